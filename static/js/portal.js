// Behaviour shared by every staff page. Pages add their own file through the `scripts` block;
// nothing runs inline (the Content-Security-Policy forbids it).
(function () {
  "use strict";

  // A <select data-enviar-al-cambiar> submits its form when changed (the language menu).
  document.addEventListener("change", function (event) {
    var campo = event.target;
    if (campo instanceof HTMLSelectElement && campo.hasAttribute("data-enviar-al-cambiar")) {
      campo.form.requestSubmit();
    }
  });

  // With JavaScript on, buttons only needed without it are hidden.
  document.documentElement.classList.add("js");

  // <button data-confirmar="question"> asks before submitting its form.
  document.addEventListener("click", function (event) {
    var boton = event.target.closest("[data-confirmar]");
    if (boton && !window.confirm(boton.getAttribute("data-confirmar"))) {
      event.preventDefault();
    }
  });

  // Keyboard shortcuts: pages register them in window.portalAtajos as {key: function}.
  // They never fire while the user types in a field.
  window.portalAtajos = window.portalAtajos || {};
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var destino = event.target;
    if (destino.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(destino.tagName)) return;
    var accion = window.portalAtajos[event.key];
    if (accion) {
      event.preventDefault();
      accion(event);
    }
  });
})();
