import { defineConfig } from 'vitest/config';

// Three tiers (see DESIGN.md "Test tiers"): unit tests run anywhere; privileged tests need
// root and loop devices; qemu tests boot real disks. Tiers that cannot run print why and skip.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx', 'qemu-tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 600_000,
    // VMs and loop devices are heavy on a 2-core machine: one file at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
