/* The offline site's search: Sphinx's default weights, plus one rule. A chapter whose own title names every
   searched word is the page that explains it, so it ranks above pages that only use the word (a search for
   "ELBO" opens on the ELBO chapter, not on one that mentions it in a heading). */
var Scorer = {
  score: (result) => {
    const [docname, title, anchor, descr, score] = result;
    const query = new URLSearchParams(window.location.search).get("q") || "";
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const pageTitle = (title || "").toLowerCase();
    const named = !anchor && words.length > 0 && words.every((w) => pageTitle.includes(w));
    return score + (named ? 30 : 0);
  },
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 },
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};
