/** A fixed machine line for the benchmark report tests (no `os` calls, so the output is the same everywhere). */
import type { MachineInfo } from '../../../tools/bench/report.js';

export const MACHINE: MachineInfo = {
  cpuModel: 'Test CPU @ 2.00GHz',
  cpuCount: 2,
  totalMemoryBytes: 4 * 2 ** 30,
  node: 'v20.19.0',
  platform: 'linux',
  release: '6.1.0',
  arch: 'x64',
};
