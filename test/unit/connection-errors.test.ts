// Which storage errors are a tier being unreachable or failing over (UNAVAILABLE: the client
// retries with the same event ids) and which are bugs (INTERNAL). The Redis texts are the
// replies of a real replica and cluster node.
import test from "ava";
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  DisconnectsClientError,
  MaxCommandRedirectionsError,
  RootNodesUnavailableError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
} from "redis";
import { isConnectionError } from "../../server/interceptors/errors.js";

const transient = [
  "READONLY You can't write against a read only replica.",
  "READONLY You can't write against a read only replica. script: e871aa240bf768448297bba2acf6d02ec7158eee, on @user_script:1.",
  "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.",
  "LOADING Redis is loading the dataset in memory",
  "CLUSTERDOWN The cluster is down",
  "TRYAGAIN Multiple keys request during rehashing of slot",
  "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
  "connect ECONNREFUSED 127.0.0.1:6379",
];

const bugs = ["ERR wrong number of arguments for 'xadd' command", "NOSCRIPT No matching script. Please use EVAL.", "error loading the archive index", "Cannot read properties of undefined (reading 'seq')"];

test("a failover's and an outage's errors are transient", (t) => {
  for (const message of transient) t.true(isConnectionError(new Error(message)), message);
});

test("node-redis's own errors for a connection lost, dropped in a cluster's rediscovery, or not there yet are transient", (t) => {
  const errors = [
    new DisconnectsClientError(),
    new ClientClosedError(),
    new ClientOfflineError(),
    new SocketClosedUnexpectedlyError(),
    new SocketTimeoutError(1000),
    new ConnectionTimeoutError(),
    new RootNodesUnavailableError(),
    new MaxCommandRedirectionsError(),
  ];
  for (const err of errors) t.true(isConnectionError(err), err.constructor.name);
});

test("other errors are not", (t) => {
  for (const message of bugs) t.false(isConnectionError(new Error(message)), message);
  t.false(isConnectionError("READONLY as a string, not an Error"));
});
