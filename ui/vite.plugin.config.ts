// The react_apps bundle: one IIFE file that uses the host page's React (Airflow's UI provides
// globalThis.React, ReactDOM and ReactJSXRuntime); React is never bundled a second time.
import { resolve } from "node:path";
import { defineConfig } from "vite";

const outDir = resolve(__dirname, "../src/airflow_mlplatform/plugin/static");

export default defineConfig({
  esbuild: { jsx: "automatic", legalComments: "none" },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir,
    emptyOutDir: false,
    target: "es2020",
    cssCodeSplit: false,
    sourcemap: false,
    lib: {
      entry: resolve(__dirname, "src/entries/plugin.tsx"),
      name: "MLPlatformDesigner",
      formats: ["iife"],
      fileName: () => "designer.js",
      cssFileName: "designer",
    },
    rollupOptions: {
      external: ["react", "react-dom", "react/jsx-runtime", "react-dom/client"],
      output: {
        globals: {
          react: "React",
          "react-dom": "ReactDOM",
          "react-dom/client": "ReactDOM",
          "react/jsx-runtime": "ReactJSXRuntime",
        },
      },
    },
  },
});
