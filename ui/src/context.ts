// What every part of the designer reads: the server's palette and profiles, the current errors
// and hints, and whether this user may edit.
import { createContext, useContext } from "react";
import type { ErrorMap } from "./logic/errors";
import type { FieldSpec } from "./logic/schemaForm";
import type { Hints, Palette, Profile, StepType } from "./types";

export interface DesignerContextValue {
  palette: Palette;
  profiles: Profile[];
  errors: ErrorMap;
  hints: Hints["steps"];
  readOnly: boolean;
  stepType(type: string): StepType | undefined;
  fields(type: string): FieldSpec[];
}

export const DesignerContext = createContext<DesignerContextValue | null>(null);

export function useDesigner(): DesignerContextValue {
  const value = useContext(DesignerContext);
  if (!value) throw new Error("useDesigner outside <DesignerContext.Provider>");
  return value;
}
