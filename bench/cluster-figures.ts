/**
 * The figures test/bench/cluster.run.ts writes for bench (p) (bench/cluster.ts): declared here, in the build, because
 * the driver itself is test code that the build leaves out.
 */
import type { BudgetStatus } from '../controller/api/v1alpha1/midicorpus.js';

/** The server's client connections over a run (test/e2e/support/database.ts ConnectionSampler's figures). */
export interface SampledConnections {
  samples: number;
  /** Each count's own maximum; `everyone` is every client backend on the server, the sampler's own included. */
  peak: { total: number; everyone: number; runners: number; scans: number; operator: number };
}

export interface LocalSide {
  /** `midi-corpus local`, spawn to exit. */
  seconds: number;
  files: number;
  shards: number;
  runners: number;
  connections: SampledConnections;
  /** Local mode's own figures: its cap and the most it saw of its own connections. */
  reportedBudget: number;
  reportedPeak: number;
}

export interface ControllerMemory {
  /** VmHWM of the controller process at the end of the run: the most resident memory it ever had. */
  peakRssMb: number;
  /** The highest nodejs_heap_size_used_bytes its /metrics showed, sampled every second. */
  peakHeapUsedMb: number;
  heapSamples: number;
}

export interface ClusterSide {
  files: number;
  /** From `kubectl apply` of the MidiCorpus to status phase Succeeded seen. */
  seconds: number;
  /** Seconds from the apply until each phase was first seen. */
  phases: Record<string, number>;
  shards: number;
  /** Most runner pods at once that had not exited. */
  peakLivePods: number;
  /** What the controller wrote in status: limit, reserved, headroom, allowance... */
  budget?: BudgetStatus;
  connections: SampledConnections;
  controller: ControllerMemory;
}

export interface ClusterRunFigures {
  files: number;
  bytes: number;
  filesPerShard: number;
  cpu: string;
  maxConnections: number;
  nodes: string[];
  /** Control plane, two nodes and the project image imported into them. */
  clusterStartSeconds: number;
  rounds: { local: LocalSide; cluster: ClusterSide }[];
  /** part-00 alone, the shard count of the whole corpus: the N of the controller's N vs 10N. */
  small: ClusterSide;
}
