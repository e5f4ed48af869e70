// The app's pages, by the part of the address after `#`:
//   #/runs                               runs, their progress and controls, and the submit form
//   #/browse/RUN?dataset=core&...        a run's datasets as a filtered, paged table
//   #/record/ID                          a record with its lineage and reviews
//   #/review/RUN?dataset=core&...        the filtered rows one at a time, reviewed with the keyboard
import { show } from "./dom.js";
import { renderBrowse } from "./browse.js";
import { renderRecord } from "./record.js";
import { renderReview } from "./review.js";
import { renderRuns } from "./runs.js";

const pages = { runs: renderRuns, browse: renderBrowse, record: renderRecord, review: renderReview };
let cleanup = null;
let shown = 0; // the route on screen: a page that finishes loading after the next one started is undone

export function route() {
  const mine = ++shown;
  const [path, search] = (location.hash.slice(1) || "/runs").split("?");
  const [, page, id] = path.split("/");
  if (cleanup) cleanup();
  cleanup = null;
  const main = document.createElement("div"); // a page still loading after the next one started writes here
  document.getElementById("main").replaceChildren(main);
  show("");
  const render = pages[page] || renderRuns;
  Promise.resolve(render(main, decodeURIComponent(id || ""), new URLSearchParams(search || "")))
    .then((done) => {
      if (mine === shown) cleanup = done || null;
      else if (done) done();
    })
    .catch((error) => { if (mine === shown) show(error.message, true); });
}

window.addEventListener("hashchange", route);
route();
