// autocannon ships no types; the edge section uses a few fields of its result.
declare module 'autocannon';
