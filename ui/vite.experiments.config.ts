// The Experiments react_apps bundle (a tab on task pages): the designer bundle's settings (one IIFE
// file on the host page's React), another entry and file name.
import { resolve } from "node:path";
import { mergeConfig } from "vite";
import designer from "./vite.plugin.config";

export default mergeConfig(designer, {
  build: {
    lib: {
      entry: resolve(__dirname, "src/entries/experiments.tsx"),
      name: "MLPlatformExperiments",
      fileName: () => "experiments.js",
      cssFileName: "experiments",
    },
  },
});
