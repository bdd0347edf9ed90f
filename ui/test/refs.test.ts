import { describe, expect, it } from "vitest";
import { findRefs, formatRef, parseExactRef, renameParamInValue, renameStepInValue } from "../src/logic/refs";

describe("references", () => {
  it("formats both kinds in the format's syntax", () => {
    expect(formatRef({ kind: "output", step: "train", output: "model_path" })).toBe("${{ steps.train.outputs.model_path }}");
    expect(formatRef({ kind: "param", name: "C" })).toBe("${{ params.C }}");
  });

  it("parses an exact reference, tolerating spacing, and nothing else", () => {
    expect(parseExactRef("${{steps.a-1.outputs.model.pkl}}")).toEqual({ kind: "output", step: "a-1", output: "model.pkl" });
    expect(parseExactRef("  ${{ params.C }} ")).toEqual({ kind: "param", name: "C" });
    expect(parseExactRef("s3://b/${{ params.C }}")).toBeNull();
    expect(parseExactRef("${{ steps.a.model }}")).toBeNull();
    expect(parseExactRef(3)).toBeNull();
  });

  it("finds references anywhere in a value", () => {
    const refs = findRefs({ a: ["x ${{ params.p }} y ${{ steps.s.outputs.o }}"], b: { c: "${{ params.q }}" }, d: 1 });
    expect(refs).toEqual([
      { kind: "param", name: "p" },
      { kind: "output", step: "s", output: "o" },
      { kind: "param", name: "q" },
    ]);
  });

  it("renames steps and parameters only where they are referenced", () => {
    const value = { a: "${{ steps.train.outputs.m }} ${{ steps.trainer.outputs.m }}", b: ["${{ params.C }}", "${{ params.CC }}"] };
    expect(renameStepInValue(value, "train", "fit")).toEqual({
      a: "${{ steps.fit.outputs.m }} ${{ steps.trainer.outputs.m }}",
      b: ["${{ params.C }}", "${{ params.CC }}"],
    });
    expect(renameParamInValue(value, "C", "reg")).toEqual({
      a: "${{ steps.train.outputs.m }} ${{ steps.trainer.outputs.m }}",
      b: ["${{ params.reg }}", "${{ params.CC }}"],
    });
  });
});
