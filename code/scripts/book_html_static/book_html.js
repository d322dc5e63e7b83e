// Search from a page opened as a file (file://): the browser lets Sphinx's search load
// its index (a <script>) but forbids it to fetch() the pages it found, so results show
// titles only and every fetch logs a CORS error.  Turn the fetches off and say so.
(function () {
  "use strict";
  if (window.location.protocol !== "file:") return;
  const NOTE =
    "This copy of the book is opened as a file, so search lists the matching pages " +
    "by title only (browsers do not let a file read other files). For results with " +
    "the matching text, serve the book's folder (for instance, run " +
    "python3 -m http.server inside it, or python3 -m http.server -d _build/html in " +
    "the repository) and open http://localhost:8000/.";
  function addNote(place) {
    if (!place || place.querySelector(".optbook-search-note")) return;
    const note = document.createElement("p");
    note.className = "optbook-search-note";
    note.textContent = NOTE;
    place.appendChild(note);
  }
  function noSummaries() {
    if (typeof DOCUMENTATION_OPTIONS !== "undefined") {
      DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false;
    }
  }
  noSummaries();  // documentation_options.js runs before this file
  document.addEventListener("DOMContentLoaded", function () {
    noSummaries();
    // The search page (under its search box) and the search pop-up of every page.
    const results = document.getElementById("search-results");
    if (results) {
      const note = document.createElement("div");
      results.parentNode.insertBefore(note, results);
      addNote(note);
    }
    document.querySelectorAll("#pst-search-dialog, .search-button__search-container")
      .forEach(addNote);
  });
})();
