/**
 * The controller's defaults that `midi-corpus controller` shows as its flags' defaults, in a module of their own: the
 * CLI's flag parsing (and every other command's start-up, which imports every command's flags) must not load the
 * reconciler and the planners behind it.
 */

/** How long a pod may stay unschedulable before it is reported (a cluster autoscaler takes a few minutes). */
export const UNSCHEDULABLE_GRACE_MS = 180_000;

/**
 * How soon a write the API server refused for good is tried again with the same spec: slowly, since the same request
 * gets the same answer, yet not never, since what it refers to may be fixed without the spec changing (a Role granted,
 * a ServiceAccount created, an admission policy relaxed).
 */
export const REJECTED_RETRY_MS = 300_000;
