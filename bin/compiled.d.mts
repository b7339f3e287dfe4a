export declare const SOURCE_DIRS: string[];
export declare const STAMP: string;
export declare function isBuildFresh(root: string): boolean;
