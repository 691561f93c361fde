// The ticket page: keyboard shortcuts to the reply (r) and the internal note (n). Everything
// else on the page works through htmx attributes and plain forms.
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
})();
