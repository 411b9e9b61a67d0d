/**
 * The pod policy: a ValidatingAdmissionPolicy (CEL, evaluated by the API server itself, no webhook) and its binding,
 * refusing MidiCorpora whose volumes or runner image would let their author get around Pod Security. Creating a
 * MidiCorpus means creating pods: its spec.source.volume, spec.splitTracks.volume and spec.runner.image go straight
 * into the runner pods (plan/desired-jobs.ts), so whoever may create MidiCorpora but not pods could otherwise mount a
 * node's filesystem (hostPath, read-write for split tracks) or run any image under the operator's name.
 *
 * The one source of truth for the policy: manifests/policy/ and the chart's files/policy/ are this module's output
 * (gen-pod-policy.ts); the chart only renames the objects and replaces the two allow-list variables from its values.
 */
import { stringify } from 'yaml';
import { GROUP, PLURAL } from './v1alpha1/midicorpus.js';

/**
 * Volume types a MidiCorpus may use by default: the data volumes of Pod Security's "restricted" level
 * (persistentVolumeClaim, ephemeral, csi), plus nfs, which the CRD's own documentation shows as an example and which
 * mounts a network share, nothing of the node's. Everything else is refused, hostPath first of all.
 */
export const DEFAULT_ALLOWED_VOLUME_TYPES = ['persistentVolumeClaim', 'ephemeral', 'csi', 'nfs'];

/** The operator's image repository (the chart's image.repository, the manifests' image). */
export const OPERATOR_IMAGE_REPOSITORY = 'ghcr.io/midi-corpus/midi-corpus-operator';

export const POD_POLICY_NAME = 'midi-corpus-operator-pod-policy';

/** The names of the variables holding the allow-lists: the chart replaces exactly these two expressions. */
export const ALLOWED_VOLUME_TYPES_VARIABLE = 'allowedVolumeTypes';
export const ALLOWED_IMAGES_VARIABLE = 'allowedImages';

export interface PodPolicyOptions {
  name?: string;
  allowedVolumeTypes?: string[];
  /**
   * Image repositories (any tag or digest of them: `repo`, `repo:tag`, `repo@sha256:…`) or prefixes ending in `/`
   * (every image under them). A bare "starts with" would let `ghcr.io/x/operator-evil` pass for `ghcr.io/x/operator`.
   */
  allowedImages?: string[];
}

interface ValidatingAdmissionPolicy {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'ValidatingAdmissionPolicy';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    failurePolicy: 'Fail';
    matchConstraints: {
      resourceRules: Array<{ apiGroups: string[]; apiVersions: string[]; operations: string[]; resources: string[] }>;
    };
    variables: Array<{ name: string; expression: string }>;
    validations: Array<{ expression: string; messageExpression: string; message: string; reason: 'Forbidden' }>;
  };
}

interface ValidatingAdmissionPolicyBinding {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'ValidatingAdmissionPolicyBinding';
  metadata: { name: string; labels: Record<string, string> };
  spec: { policyName: string; validationActions: ['Deny'] };
}

/** A CEL list literal of strings. JSON's string syntax is a subset of CEL's, so JSON.stringify quotes correctly. */
export const celStringList = (items: string[]): string => JSON.stringify(items);

const HOW_TO_CHANGE =
  'A cluster admin changes the allow-lists in the ValidatingAdmissionPolicy %s (Helm values podPolicy.allowedVolumeTypes and podPolicy.allowedImages).';

/** The refusal of a volume, for `where` (a CEL string expression naming the field) and `refused` (its refused types). */
function volumeRule(field: 'source' | 'splitTracks', name: string) {
  const refused = `variables.refused${field === 'source' ? 'Source' : 'SplitTracks'}Types`;
  const unchanged = `variables.${field}Unchanged`;
  const why =
    "its volumes are mounted into the runner pods the operator creates, so a node-level volume would get around Pod Security. Allowed volume types: ' + variables.allowedVolumeTypes.join(', ') + '.";
  return {
    // An UPDATE that leaves the volume as it was is let through: a corpus created before the policy (or before an
    // allow-list shrank) must stay deletable and its metadata editable (garbage collection's foreground deletion
    // updates the object), and it gains nothing it did not already have.
    expression: `size(${refused}) == 0 || ${unchanged}`,
    messageExpression: `'spec.${field}.volume is a ' + ${refused}.join(', ') + ' volume, which this cluster refuses for a MidiCorpus: ${why} ${HOW_TO_CHANGE.replace('%s', name)}'`,
    message: `spec.${field}.volume is of a volume type this cluster refuses for a MidiCorpus (its volumes are mounted into the runner pods). ${HOW_TO_CHANGE.replace('%s', name)}`,
    reason: 'Forbidden' as const,
  };
}

export function podPolicy(o: PodPolicyOptions = {}): [ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding] {
  const name = o.name ?? POD_POLICY_NAME;
  const labels = { 'app.kubernetes.io/name': 'midi-corpus-operator', 'app.kubernetes.io/component': 'pod-policy' };
  // The volume sources are schemaless (x-kubernetes-preserve-unknown-fields), so CEL sees them as plain maps: a
  // comprehension over a map runs over its keys, the volume types (the schema allows exactly one).
  const refusedTypes = (volume: string) => `${volume}.filter(t, !(t in variables.${ALLOWED_VOLUME_TYPES_VARIABLE}))`;
  const policy: ValidatingAdmissionPolicy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name, labels },
    spec: {
      // Fail closed: a policy that cannot be evaluated must not let a hostPath through.
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          // The main resource only: status is the controller's, and carries nothing that reaches a pod.
          { apiGroups: [GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: [PLURAL] },
        ],
      },
      variables: [
        {
          name: ALLOWED_VOLUME_TYPES_VARIABLE,
          expression: celStringList(o.allowedVolumeTypes ?? DEFAULT_ALLOWED_VOLUME_TYPES),
        },
        { name: ALLOWED_IMAGES_VARIABLE, expression: celStringList(o.allowedImages ?? [OPERATOR_IMAGE_REPOSITORY]) },
        { name: 'refusedSourceTypes', expression: refusedTypes('object.spec.source.volume') },
        {
          name: 'refusedSplitTracksTypes',
          expression: `has(object.spec.splitTracks) ? ${refusedTypes('object.spec.splitTracks.volume')} : []`,
        },
        {
          name: 'sourceUnchanged',
          expression: "request.operation == 'UPDATE' && oldObject.spec.source.volume == object.spec.source.volume",
        },
        {
          name: 'splitTracksUnchanged',
          expression:
            "request.operation == 'UPDATE' && has(oldObject.spec.splitTracks) && has(object.spec.splitTracks) && oldObject.spec.splitTracks.volume == object.spec.splitTracks.volume",
        },
        // Absent: the controller's own --runner-image, which the operator's installer chose. Empty string then.
        {
          name: 'runnerImage',
          expression: "has(object.spec.runner) && has(object.spec.runner.image) ? object.spec.runner.image : ''",
        },
        {
          name: 'runnerImageUnchanged',
          expression:
            "request.operation == 'UPDATE' && (has(oldObject.spec.runner) && has(oldObject.spec.runner.image) ? oldObject.spec.runner.image : '') == variables.runnerImage",
        },
      ],
      validations: [
        volumeRule('source', name),
        volumeRule('splitTracks', name),
        {
          expression: `variables.runnerImage == '' || variables.runnerImageUnchanged || variables.${ALLOWED_IMAGES_VARIABLE}.exists(p, p.endsWith('/') ? variables.runnerImage.startsWith(p) : (variables.runnerImage == p || variables.runnerImage.startsWith(p + ':') || variables.runnerImage.startsWith(p + '@')))`,
          messageExpression: `'spec.runner.image ' + variables.runnerImage + ' is not an image this cluster allows for a MidiCorpus: the runner pods would run it under the operator\\'s name. Allowed: images of ' + variables.${ALLOWED_IMAGES_VARIABLE}.join(', ') + ' (a repository: any tag or digest of it; a prefix ending in /: every image under it), or no spec.runner.image (the operator\\'s own runner image). ${HOW_TO_CHANGE.replace('%s', name)}'`,
          message: `spec.runner.image is not an image this cluster allows for a MidiCorpus. ${HOW_TO_CHANGE.replace('%s', name)}`,
          reason: 'Forbidden',
        },
      ],
    },
  };
  const binding: ValidatingAdmissionPolicyBinding = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name, labels },
    spec: { policyName: name, validationActions: ['Deny'] },
  };
  return [policy, binding];
}

const GENERATED = '# Generated from controller/api/pod-policy.ts (npm run gen:pod-policy): edit that, not this file.\n';

/** The policy with the defaults, as YAML: what manifests/policy/ and the chart's files/policy/ hold. */
export function podPolicyYaml(o: PodPolicyOptions = {}): string {
  return GENERATED + stringify(podPolicy(o)[0], { lineWidth: 0 });
}

/** Its binding, as YAML (manifests/policy/ only: the chart templates its own, see templates/pod-policy.yaml). */
export function podPolicyBindingYaml(o: PodPolicyOptions = {}): string {
  return GENERATED + stringify(podPolicy(o)[1], { lineWidth: 0 });
}
