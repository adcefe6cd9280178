// Progressive enhancement only: copy buttons next to values. Without JavaScript the values are
// still there to select and copy by hand, and the buttons stay hidden.
"use strict";
document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
  var target = document.getElementById(button.getAttribute("data-copy"));
  if (!target || !navigator.clipboard) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = "value" in target ? target.value : target.textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  });
});
