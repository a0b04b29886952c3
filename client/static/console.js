// retorno console: the live inbox. Each new item arrives from the server as
// an already-rendered <li> (server-sent events) and is appended to #inbox.
// The page works without this script: a reload shows the same items.
(function () {
  "use strict";
  var list = document.getElementById("inbox");
  if (!list || !window.EventSource) { return; }
  var source = new EventSource(list.getAttribute("data-live"));
  source.onmessage = function (event) {
    var template = document.createElement("template");
    template.innerHTML = event.data;
    var item = template.content.firstElementChild;
    if (!item) { return; }
    var id = item.getAttribute("data-message-id");
    if (id && list.querySelector('li[data-message-id="' + CSS.escape(id) + '"]')) { return; }
    list.appendChild(item);
    var empty = document.getElementById("inbox-empty");
    if (empty) { empty.hidden = true; }
  };
})();
