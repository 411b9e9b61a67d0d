import type { Rule } from './support.js';

/**
 * The controller's permissions, reviewed verb by verb against its API calls (controller/kube.ts, the informers
 * in controller/wiring.ts, controller/runtime/leader-election.ts); the reasons are in
 * manifests/rbac/cluster-role.yaml and the README's RBAC table. Both the manifests and the chart must grant exactly
 * these: a test fails on an extra verb as well as on a missing one.
 */
export const controllerRules: Rule[] = [
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'delete', 'list', 'patch', 'watch'] },
  { apiGroups: ['midi.corpus.dev'], resources: ['midicorpora'], verbs: ['list', 'patch', 'watch'] },
  { apiGroups: ['midi.corpus.dev'], resources: ['midicorpora/finalizers'], verbs: ['update'] },
  { apiGroups: ['midi.corpus.dev'], resources: ['midicorpora/status'], verbs: ['update'] },
];

/** Leader election, in the operator's own namespace only. */
export const leaderElectionRules: Rule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create', 'get', 'update'] },
];

/**
 * What the people who use MidiCorpora get through the built-in roles: the view role's rules reach `view` (and through
 * it `edit` and `admin`), the edit role's reach `edit` and `admin`. Never midicorpora/status for writing: only the
 * controller writes status.
 */
export const userViewRules: Rule[] = [
  { apiGroups: ['midi.corpus.dev'], resources: ['midicorpora', 'midicorpora/status'], verbs: ['get', 'list', 'watch'] },
];
export const userEditRules: Rule[] = [
  {
    apiGroups: ['midi.corpus.dev'],
    resources: ['midicorpora'],
    verbs: ['create', 'delete', 'deletecollection', 'patch', 'update'],
  },
];
