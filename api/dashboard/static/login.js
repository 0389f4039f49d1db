// The sign-in form: it posts back here, then goes where the visitor was going.
"use strict";

(() => {
  const data = hp.pageData();
  document.getElementById("signin").action = `/login?next=${encodeURIComponent(data.next)}`;
  document.getElementById("problem").textContent = data.problem || "";
})();
