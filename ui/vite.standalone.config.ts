// The iframe page (external_views mode): a normal app with its own React.
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

/**
 * The page is served at <base>/mlplatform/designer/ and its files under
 * <base>/mlplatform/static/designer-standalone/: point the page's relative asset URLs there
 * (Vite's `base` keeps only "./"-style relative bases).
 */
function assetsUnderStatic(): Plugin {
  return {
    name: "mlplatform-assets-under-static",
    transformIndexHtml: {
      order: "post",
      handler: (html) => html.replaceAll('"./assets/', '"../static/designer-standalone/assets/'),
    },
  };
}

export default defineConfig({
  root: resolve(__dirname, "standalone"),
  base: "./",
  plugins: [assetsUnderStatic()],
  esbuild: { jsx: "automatic", legalComments: "none" },
  build: {
    outDir: resolve(__dirname, "../src/airflow_mlplatform/plugin/static/designer-standalone"),
    emptyOutDir: true,
    target: "es2020",
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
