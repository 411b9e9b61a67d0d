/**
 * A small typed builder for Kubernetes structural OpenAPI v3 schemas.
 *
 * Why: the MidiCorpus schema must exist twice — as the CRD's `openAPIV3Schema` (what the API server validates and
 * defaults) and as TypeScript types (what the controller reads). Writing both by hand lets them drift. Each builder here
 * returns the wire-format schema *and* carries the TypeScript type of the values it admits, so `TypeOf<typeof schema>`
 * is derived from the very object the CRD is generated from.
 *
 * A field's TypeScript type is non-optional when the API server guarantees its presence: it is `required`, or it has a
 * `default` (the server applies defaults before the object is stored, so every object the controller reads has them).
 */

/** One CEL rule (`x-kubernetes-validations`). */
export interface Validation {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** FieldValueInvalid (default), FieldValueForbidden, FieldValueRequired, FieldValueDuplicate. */
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
}

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this project uses, in wire format (as it appears in YAML). */
export interface OpenAPISchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  properties?: Record<string, OpenAPISchema>;
  required?: string[];
  items?: OpenAPISchema;
  additionalProperties?: OpenAPISchema;
  anyOf?: OpenAPISchema[];
  default?: unknown;
  enum?: readonly unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-embedded-resource'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: Validation[];
}

/**
 * A schema node with the TypeScript type `T` of the values it admits. `P` says whether the field is always present on
 * objects read back from the API server (required or defaulted).
 */
export interface Schema<T, P extends boolean = boolean> {
  readonly openapi: OpenAPISchema;
  readonly present: P;
  /** Listed in the parent object's `required`. */
  readonly required: boolean;
  /** Phantom field carrying the value type; never set at run time. */
  readonly _type?: T;
}

export type TypeOf<S> = S extends Schema<infer T, boolean> ? T : never;

type HasDefault<O> = O extends { default: unknown } ? true : false;

interface Common {
  description?: string;
  validations?: Validation[];
}

export interface IntegerOptions extends Common {
  default?: number;
  minimum?: number;
  maximum?: number;
  format?: 'int32' | 'int64';
}

export interface NumberOptions extends Common {
  default?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
}

export interface StringOptions extends Common {
  default?: string;
  enum?: readonly string[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
}

export interface ObjectOptions extends Common {
  default?: Record<string, unknown>;
  maxProperties?: number;
}

export interface ArrayOptions extends Common {
  default?: readonly unknown[];
  minItems?: number;
  maxItems?: number;
  listType?: 'atomic' | 'set' | 'map';
  listMapKeys?: string[];
}

function node<T, P extends boolean>(openapi: OpenAPISchema, present: P): Schema<T, P> {
  return { openapi, present, required: false };
}

/** Moves the builder-level options into their wire names, dropping the ones that were not given. */
function commonFields(o: Common): OpenAPISchema {
  const out: OpenAPISchema = {};
  if (o.description !== undefined) out.description = o.description;
  if (o.validations !== undefined && o.validations.length > 0) out['x-kubernetes-validations'] = o.validations;
  return out;
}

function pick<O extends object>(o: O, keys: readonly (keyof O & keyof OpenAPISchema)[]): OpenAPISchema {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out as OpenAPISchema;
}

export function integer<const O extends IntegerOptions = Record<never, never>>(o?: O): Schema<number, HasDefault<O>> {
  const opts: IntegerOptions = o ?? {};
  return node(
    { type: 'integer', ...pick(opts, ['format', 'minimum', 'maximum', 'default']), ...commonFields(opts) },
    (opts.default !== undefined) as HasDefault<O>,
  );
}

export function number<const O extends NumberOptions = Record<never, never>>(o?: O): Schema<number, HasDefault<O>> {
  const opts: NumberOptions = o ?? {};
  return node(
    {
      type: 'number',
      ...pick(opts, ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'default']),
      ...commonFields(opts),
    },
    (opts.default !== undefined) as HasDefault<O>,
  );
}

export function boolean<const O extends Common & { default?: boolean } = Record<never, never>>(
  o?: O,
): Schema<boolean, HasDefault<O>> {
  const opts: Common & { default?: boolean } = o ?? {};
  return node(
    { type: 'boolean', ...pick(opts, ['default']), ...commonFields(opts) },
    (opts.default !== undefined) as HasDefault<O>,
  );
}

type StringType<O> = O extends { enum: readonly (infer E)[] } ? E : string;

export function string<const O extends StringOptions = Record<never, never>>(
  o?: O,
): Schema<StringType<O>, HasDefault<O>> {
  const opts: StringOptions = o ?? {};
  return node(
    {
      type: 'string',
      ...pick(opts, ['format', 'enum', 'minLength', 'maxLength', 'pattern', 'default']),
      ...commonFields(opts),
    },
    (opts.default !== undefined) as HasDefault<O>,
  );
}

type Props = Record<string, Schema<unknown, boolean>>;
type PresentKeys<P extends Props> = { [K in keyof P]: P[K] extends Schema<unknown, true> ? K : never }[keyof P];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectType<P extends Props> = Simplify<
  { [K in PresentKeys<P>]: TypeOf<P[K]> } & { [K in Exclude<keyof P, PresentKeys<P>>]?: TypeOf<P[K]> }
>;

/** An object with known properties. Unknown properties are pruned by the API server. */
export function object<const P extends Props, const O extends ObjectOptions = Record<never, never>>(
  properties: P,
  o?: O,
): Schema<ObjectType<P>, HasDefault<O>> {
  const opts: ObjectOptions = o ?? {};
  const required = Object.entries(properties)
    .filter(([, s]) => s.required)
    .map(([k]) => k);
  const openapi: OpenAPISchema = {
    type: 'object',
    ...commonFields(opts),
    ...pick(opts, ['maxProperties', 'default']),
    properties: Object.fromEntries(Object.entries(properties).map(([k, s]) => [k, s.openapi])),
  };
  if (required.length > 0) openapi.required = required;
  return node(openapi, (opts.default !== undefined) as HasDefault<O>);
}

/** A string-keyed map whose values all follow `values`. */
export function mapOf<V extends Schema<unknown, boolean>, const O extends ObjectOptions = Record<never, never>>(
  values: V,
  o?: O,
): Schema<Record<string, TypeOf<V>>, HasDefault<O>> {
  const opts: ObjectOptions = o ?? {};
  return node(
    {
      type: 'object',
      ...commonFields(opts),
      ...pick(opts, ['maxProperties', 'default']),
      additionalProperties: values.openapi,
    },
    (opts.default !== undefined) as HasDefault<O>,
  );
}

export function arrayOf<I extends Schema<unknown, boolean>, const O extends ArrayOptions = Record<never, never>>(
  items: I,
  o?: O,
): Schema<TypeOf<I>[], HasDefault<O>> {
  const opts: ArrayOptions = o ?? {};
  const openapi: OpenAPISchema = {
    type: 'array',
    ...commonFields(opts),
    ...pick(opts, ['minItems', 'maxItems', 'default']),
    items: items.openapi,
  };
  if (opts.listType !== undefined) openapi['x-kubernetes-list-type'] = opts.listType;
  if (opts.listMapKeys !== undefined) openapi['x-kubernetes-list-map-keys'] = opts.listMapKeys;
  return node(openapi, (opts.default !== undefined) as HasDefault<O>);
}

export interface PreservedOptions extends Common {
  /** Bounds on the number of keys: checked by the API server's schema validation, with no CEL rule (and no CEL cost). */
  minProperties?: number;
  maxProperties?: number;
  /**
   * Keys declared so that CEL rules may name them: on a preserve-unknown object without declared properties, the real
   * API server refuses to compile `has(self.x)` ("undefined field") and `size(self)` (no overload).
   */
  properties?: Record<string, Schema<unknown, boolean>>;
}

/**
 * An object the API server stores as given (`x-kubernetes-preserve-unknown-fields`): for embedding core types such as
 * a VolumeSource without copying their schema. `T` is the TypeScript type to read it as; the API server does not check
 * it, so the controller must (and the kubelet finally will).
 */
export function preserved<T>(o: PreservedOptions = {}): Schema<T, false> {
  const openapi: OpenAPISchema = {
    type: 'object',
    ...commonFields(o),
    ...pick(o, ['minProperties', 'maxProperties']),
    'x-kubernetes-preserve-unknown-fields': true,
  };
  if (o.properties !== undefined)
    openapi.properties = Object.fromEntries(Object.entries(o.properties).map(([k, s]) => [k, s.openapi]));
  return node(openapi, false);
}

/**
 * A resource.Quantity that must be above zero: a negative sign and an all-zero number (`0`, `0.0`, `0m`) do not
 * match, and a bare integer must be ≥ 1. A pattern, not a CEL rule: on an int-or-string value every CEL conversion
 * (`string(x)`, `quantity(...)`) is costed as if the value were megabytes long, and the real API server refuses the
 * CRD for exceeding the rule cost budget. Suffixes and exponent as in the built-in types' generated schemas.
 */
export const POSITIVE_QUANTITY_PATTERN =
  '^\\+?(([0-9]*[1-9][0-9]*(\\.[0-9]*)?)|([0-9]*\\.[0-9]*[1-9][0-9]*))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';
export function positiveQuantity(o: Common = {}): Schema<string | number, false> {
  return node(
    {
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      pattern: POSITIVE_QUANTITY_PATTERN,
      minimum: 1,
      'x-kubernetes-int-or-string': true,
      ...commonFields(o),
    },
    false,
  );
}

/** Marks a property as required in its parent object (so it is always present). */
export function required<T>(s: Schema<T, boolean>): Schema<T, true> {
  return { ...s, present: true, required: true };
}

/**
 * Applies the schema's defaults to `value` the way the API server does (structural defaulting): top-down, a missing
 * property with a default gets a copy of it, then the defaults below it apply in turn. Used by tests and the `plan`
 * command to see a MidiCorpus exactly as the controller will read it.
 */
export function applyDefaults<T>(schema: OpenAPISchema, value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    return (schema.items ? value.map((v: unknown) => applyDefaults(schema.items as OpenAPISchema, v)) : value) as T;
  }
  if (schema['x-kubernetes-preserve-unknown-fields'] && !schema.properties) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    if (out[key] === undefined && prop.default !== undefined) out[key] = structuredClone(prop.default);
    if (out[key] !== undefined) out[key] = applyDefaults(prop, out[key]);
  }
  if (schema.additionalProperties) {
    for (const key of Object.keys(out)) out[key] = applyDefaults(schema.additionalProperties, out[key]);
  }
  return out as T;
}
