/**
 * SPEC §8.1 on PostgreSQL: three `appvisor serve` replicas on one state store behind HAProxy;
 * operator intent travels by LISTEN/NOTIFY, so it reaches the other replicas within 1 s.
 */
import { postgres } from '../helpers/servers.js';
import { replicaScenarios } from './scenarios.js';

const { available } = await postgres();

replicaScenarios('postgres', available, { propagationMs: 1_000 });
