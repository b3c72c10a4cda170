/**
 * SPEC §8.1 on MariaDB: the same scenarios as on PostgreSQL, without LISTEN/NOTIFY: operator
 * intent reaches the other replicas by the store poll, within 5 s.
 */
import { mysqlServer } from '../helpers/servers.js';
import { replicaScenarios } from './scenarios.js';

const { available } = await mysqlServer();

replicaScenarios('mysql', available, { propagationMs: 5_000 });
