/**
 * The Prometheus text format of dcctl's textfiles (dcctl_backup.prom, dcctl_replication.prom, dcctl_dr.prom), which
 * node_exporter's textfile collector reads: one HELP and TYPE per gauge, then a sample per item that has a value.
 */
export interface Gauge<T> {
  name: string;
  help: string;
  /** undefined: no sample for this item; NaN: a sample that says "unknown". */
  value(item: T): number | undefined;
}

export function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

/** The lines of some gauges over some items, each sample labelled by `labels(item)` (none: a bare sample). */
export function renderGauges<T>(gauges: Gauge<T>[], items: T[], labels: (item: T) => Record<string, string>): string[] {
  const out: string[] = [];
  for (const g of gauges) {
    out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
    for (const item of items) {
      const v = g.value(item);
      if (v === undefined || v === Number.POSITIVE_INFINITY || v === Number.NEGATIVE_INFINITY) continue;
      const pairs = Object.entries(labels(item)).map(([k, x]) => `${k}="${label(x)}"`);
      out.push(`${g.name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${formatNumber(v)}`);
    }
  }
  return out;
}
