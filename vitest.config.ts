import { defineConfig } from "vitest/config";

// `npm run test:all`: every workspace's tests in one vitest process.
export default defineConfig({ test: { projects: ["packages/*", "plugins/*/*", "apps/*"] } });
