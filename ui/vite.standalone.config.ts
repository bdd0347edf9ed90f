// The iframe page (external_views mode): a normal app with its own React.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  root: resolve(__dirname, "standalone"),
  // the page is served at <base>/mlplatform/designer/, its files under <base>/mlplatform/static/
  base: "../static/designer-standalone/",
  esbuild: { jsx: "automatic", legalComments: "none" },
  build: {
    outDir: resolve(__dirname, "../src/airflow_mlplatform/plugin/static/designer-standalone"),
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
  },
});
