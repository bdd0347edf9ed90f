// Fields that take "one string or a list of strings" (outputs, depends_on).
import type { Json } from "../types";

/** `a` or `[a, b]` (or nothing) as a list. */
export function asList(value: Json | undefined): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === "string");
  return [];
}

/** A list written back the way the format's files usually have it: absent when empty. */
export function fromList(items: string[]): string[] | undefined {
  return items.length === 0 ? undefined : items;
}

export function unique<T>(items: T[]): T[] {
  return Array.from(new Set(items));
}
