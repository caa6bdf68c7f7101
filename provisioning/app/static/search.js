// Progressive enhancement only: drag-and-drop onto the image row, search as soon as a file is
// chosen, and a visible "Searching..." state. Everything works without this file.
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  var zone = document.getElementById("drop-zone");
  var input = document.getElementById("image");
  var imageButton = document.getElementById("image-search");
  var status = document.getElementById("status");
  if (!form || !zone || !input || !imageButton) return;

  function searching() {
    var main = document.querySelector("main");
    if (main) main.setAttribute("aria-busy", "true");
    if (status) status.textContent = "Searching…";
  }
  function searchByImage() {
    if (!input.files || input.files.length === 0) return;
    if (form.requestSubmit) form.requestSubmit(imageButton); else imageButton.click();
  }
  form.addEventListener("submit", searching);
  input.addEventListener("change", searchByImage);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
    input.files = event.dataTransfer.files;
    searchByImage();
  });
})();
