// The queue's keyboard: j/k move between rows, o or Enter opens, x checks, / searches, ?
// shows the help. The selected row is marked (class and aria-current) and its subject link
// holds the focus, so the browser's own focus ring shows where the user is.
(function () {
  "use strict";

  var actual = -1;

  function filas() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-cola] tr[data-fila]"));
  }

  function seleccionar(indice) {
    var lista = filas();
    if (!lista.length) return;
    indice = Math.max(0, Math.min(indice, lista.length - 1));
    lista.forEach(function (fila, i) {
      fila.classList.toggle("seleccionada", i === indice);
      if (i === indice) fila.setAttribute("aria-current", "true");
      else fila.removeAttribute("aria-current");
    });
    actual = indice;
    var enlace = lista[indice].querySelector("[data-abrir]");
    if (enlace) enlace.focus();
  }

  // The row of the focused element, if any (a click or Tab moves the selection along).
  function filaConFoco() {
    var fila = document.activeElement && document.activeElement.closest("tr[data-fila]");
    return fila ? filas().indexOf(fila) : -1;
  }

  function desde() {
    var enFoco = filaConFoco();
    return enFoco >= 0 ? enFoco : actual;
  }

  function seleccionada() {
    var indice = desde();
    return indice >= 0 ? filas()[indice] : null;
  }

  function abrir() {
    var fila = seleccionada();
    var enlace = fila && fila.querySelector("[data-abrir]");
    if (enlace) window.location.assign(enlace.href);
  }

  function ayuda() {
    var dialogo = document.getElementById("atajos");
    if (dialogo && !dialogo.open) dialogo.showModal();
  }

  Object.assign(window.portalAtajos, {
    j: function () { seleccionar(desde() + 1); },
    k: function () { seleccionar(desde() < 0 ? 0 : desde() - 1); },
    o: abrir,
    x: function () {
      var fila = seleccionada();
      var casilla = fila && fila.querySelector("[data-marcar]");
      if (casilla) casilla.click();
    },
    "/": function () {
      var campo = document.querySelector("[data-buscar]");
      if (campo) { campo.focus(); campo.select(); }
    },
    "?": ayuda,
  });

  // Enter opens the selected row when the focus is not already on a link or a control.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.ctrlKey || event.metaKey || event.altKey) return;
    var destino = event.target;
    if (destino.closest("a, button, input, select, textarea, summary, dialog")) return;
    if (actual >= 0) {
      event.preventDefault();
      abrir();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-abrir-atajos]")) ayuda();
  });

  // "Check all" checks every row of this page.
  document.addEventListener("change", function (event) {
    var todos = event.target.closest("[data-marcar-todos]");
    if (!todos) return;
    document.querySelectorAll("[data-cola] [data-marcar]").forEach(function (casilla) {
      casilla.checked = todos.checked;
    });
  });

  // A new page of rows (htmx swapped it in): the selection starts again.
  document.body.addEventListener("htmx:afterSwap", function () { actual = -1; });
})();
