// The Experiments react_apps bundle (a tab on task pages): one IIFE file on the host page's React.
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
      entry: resolve(__dirname, "src/entries/experiments.tsx"),
      name: "MLPlatformExperiments",
      formats: ["iife"],
      fileName: () => "experiments.js",
      cssFileName: "experiments",
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
