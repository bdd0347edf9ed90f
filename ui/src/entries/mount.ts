// The designer's CSS travels inside the JS bundle (Airflow's plugin loader only imports the JS):
// injected once into the page's head.
import flowCss from "@xyflow/react/dist/style.css?inline";
import designerCss from "../styles.css?inline";

const STYLE_ID = "mlplatform-designer-style";

export function injectStyles(doc: Document = document): void {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = STYLE_ID;
  style.textContent = `${flowCss}\n${designerCss}`;
  doc.head.appendChild(style);
}
