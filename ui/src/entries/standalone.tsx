// The iframe page (external_views mode): the same designer with its own React.
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { DesignerApp } from "../DesignerApp";
import { injectStyles } from "./mount";

injectStyles();
const container = document.getElementById("root");
if (!container) throw new Error("the designer page has no #root element");
createRoot(container).render(
  <StrictMode>
    <DesignerApp embedded />
  </StrictMode>,
);
