// React Flow measures a node's handles once; when ports are added, removed or renamed without the
// node changing size, it must be told, or connections from the new ports cannot start.
import { useUpdateNodeInternals } from "@xyflow/react";
import { useEffect } from "react";

export function usePortsChanged(nodeId: string, ports: string[]): void {
  const update = useUpdateNodeInternals();
  const key = ports.join("\u0000");
  useEffect(() => update(nodeId), [update, nodeId, key]);
}
