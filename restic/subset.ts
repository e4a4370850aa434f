/**
 * restic's --read-data-subset forms (`n%`, `n/t`, a size like `500M`), with the bounds restic itself would only check
 * after opening the repository: what `backup verify --subset` and the policies file's `cycle.verify.subset` accept.
 */
export function validReadDataSubset(text: string): boolean {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (pct) return Number(pct[1]) > 0 && Number(pct[1]) <= 100;
  const part = /^(\d+)\/(\d+)$/.exec(text);
  if (part) return Number(part[1]) >= 1 && Number(part[1]) <= Number(part[2]);
  return /^\d+[KMGT]?$/i.test(text) && !/^0+[KMGT]?$/i.test(text);
}

/** What a valid subset looks like, for the line that refuses one. */
export const READ_DATA_SUBSET_FORMS = "a percentage above 0 and at most 100 (5%), a part n/t with 1 ≤ n ≤ t (1/10), or a size (500M)";
