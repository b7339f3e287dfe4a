/**
 * The sections `npm run bench` runs, in this order. A section is listed here
 * only once it is written; add a new one by importing its module and putting
 * it in the list.
 */
import type { Section } from '../lib/section.js';
import ceiling from './ceiling.js';
import peerLanggraph from './peer-langgraph.js';
import peerBullmq from './peer-bullmq.js';
import fork5 from './fork5.js';
import resume from './resume.js';
import edge from './edge.js';
import memory from './memory.js';
import service from './service.js';
import resumeHttp from './resume-http.js';
import startup from './startup.js';
import triggers from './triggers.js';
import map from './map.js';
import partitions from './partitions.js';
import capacity from './capacity.js';

export const sections: Section[] = [ceiling, peerLanggraph, peerBullmq, fork5, resume, resumeHttp, edge, service, triggers, memory, startup, map, partitions, capacity];
