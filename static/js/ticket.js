// The ticket page: keyboard shortcuts to the reply (r) and the internal note (n), and a beacon
// when the page is left, so other agents stop seeing this one on it at their next poll.
// Everything else on the page works through htmx attributes and plain forms.
(function () {
  "use strict";
  function enfocar(id) {
    return function () {
      var campo = document.getElementById(id);
      if (campo) {
        campo.scrollIntoView({ block: "center" });
        campo.focus();
      }
    };
  }
  window.portalAtajos = window.portalAtajos || {};
  window.portalAtajos.r = enfocar("respuesta_texto");
  window.portalAtajos.n = enfocar("nota_texto");

  window.addEventListener("pagehide", function () {
    var presencia = document.getElementById("presencia");
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!presencia || !presencia.dataset.salir || !token || !navigator.sendBeacon) {
      return;
    }
    var datos = new FormData();
    datos.append("csrfmiddlewaretoken", token.value);
    datos.append("vista", presencia.dataset.vista || "");
    navigator.sendBeacon(presencia.dataset.salir, datos);
  });
})();
