import preact from "@preact/preset-vite";
import { defineConfig } from "vitest/config";

// The gateway serves dist/ at `/` (assets under /assets/); `npm run dev` proxies the API to a running gateway.
export default defineConfig({
  plugins: [preact()],
  build: { target: "es2022", sourcemap: false, assetsInlineLimit: 0 },
  server: {
    proxy: {
      "/auth": process.env.PANICSAFE_GATEWAY ?? "http://127.0.0.1:8000",
      "/exports": process.env.PANICSAFE_GATEWAY ?? "http://127.0.0.1:8000",
      "/graphql": { target: process.env.PANICSAFE_GATEWAY ?? "http://127.0.0.1:8000", ws: true },
    },
  },
  test: { environment: "jsdom", include: ["src/**/*.test.ts"], testTimeout: 30_000 },
});
