// The vault's pages: a revealed secret hides itself, the copy button, and the password
// generator with its strength meter on the credential form. Driven by data- attributes; the
// page's strings come translated from the template.
(function () {
  "use strict";

  // --- A revealed secret: hidden again after data-ocultar-en seconds; copy to the clipboard ---

  function prepararRevelada(raiz) {
    var cajas = raiz.querySelectorAll ? raiz.querySelectorAll("[data-ocultar-en]") : [];
    if (raiz.matches && raiz.matches("[data-ocultar-en]")) cajas = [raiz];
    Array.prototype.forEach.call(cajas, function (caja) {
      var segundos = parseFloat(caja.getAttribute("data-ocultar-en")) || 30;
      window.setTimeout(function () {
        var aviso = document.createElement("p");
        aviso.textContent = caja.getAttribute("data-texto-oculta");
        aviso.setAttribute("data-oculta", "");
        caja.replaceWith(aviso);
      }, segundos * 1000);
    });
  }

  document.addEventListener("htmx:load", function (event) {
    prepararRevelada(event.detail.elt);
  });

  document.addEventListener("click", function (event) {
    var boton = event.target.closest("[data-copiar]");
    if (!boton) return;
    var caja = boton.closest("[data-ocultar-en]");
    var valor = caja.querySelector("[data-valor]").textContent;
    var estado = caja.querySelector("[data-estado]");
    if (!navigator.clipboard) {
      estado.textContent = boton.getAttribute("data-texto-fallo");
      return;
    }
    navigator.clipboard.writeText(valor).then(
      function () {
        estado.textContent = boton.getAttribute("data-texto-copiada");
        // Recorded only once the copy happened (hx-trigger="copiado").
        if (window.htmx) window.htmx.trigger(boton, "copiado");
      },
      function () {
        estado.textContent = boton.getAttribute("data-texto-fallo");
      }
    );
  });

  // --- Password generator and strength meter ---

  var CLASES = {
    minusculas: "abcdefghijklmnopqrstuvwxyz",
    mayusculas: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    digitos: "0123456789",
    simbolos: "!#$%&()*+,-./:;<=>?@[]^_{|}~",
  };

  // A uniform index below n from crypto.getRandomValues (rejection sampling, no modulo bias).
  function azar(n) {
    var limite = Math.floor(0x100000000 / n) * n;
    var buffer = new Uint32Array(1);
    do {
      window.crypto.getRandomValues(buffer);
    } while (buffer[0] >= limite);
    return buffer[0] % n;
  }

  function generar(longitud, clases) {
    var todos = clases.join("");
    var letras = [];
    // One character of each chosen class, the rest from all of them, then shuffled.
    clases.forEach(function (clase) {
      letras.push(clase.charAt(azar(clase.length)));
    });
    while (letras.length < longitud) letras.push(todos.charAt(azar(todos.length)));
    for (var i = letras.length - 1; i > 0; i--) {
      var j = azar(i + 1);
      var t = letras[i];
      letras[i] = letras[j];
      letras[j] = t;
    }
    return letras.join("");
  }

  // Bits of a secret: its length (repeats count less) times log2 of the alphabet it draws from.
  function bits(valor) {
    if (!valor) return 0;
    var alfabeto = 0;
    if (/[a-z]/.test(valor)) alfabeto += 26;
    if (/[A-Z]/.test(valor)) alfabeto += 26;
    if (/[0-9]/.test(valor)) alfabeto += 10;
    if (/[^a-zA-Z0-9]/.test(valor)) alfabeto += 33;
    var distintos = new Set(valor).size;
    var largo = Math.min(valor.length, distintos * 2);
    return Math.round(largo * Math.log2(alfabeto));
  }

  function nivel(b) {
    if (b < 28) return "muy-debil";
    if (b < 36) return "debil";
    if (b < 60) return "aceptable";
    if (b < 90) return "fuerte";
    return "muy-fuerte";
  }

  function prepararGenerador(caja) {
    var form = caja.closest("form");
    var campo = form.querySelector("[data-clave]");
    var medidor = caja.querySelector("meter");
    var texto = caja.querySelector("[data-fuerza-texto]");
    var mostrar = caja.querySelector("[data-mostrar]");
    caja.hidden = false;

    function medir() {
      var b = bits(campo.value);
      medidor.value = Math.min(b, 128);
      if (!campo.value) {
        texto.textContent = caja.getAttribute("data-texto-vacia");
        return;
      }
      var detalle = caja.getAttribute("data-texto-bits").replace("{bits}", b);
      texto.textContent = caja.getAttribute("data-texto-" + nivel(b)) + " " + detalle;
    }

    campo.addEventListener("input", medir);
    caja.querySelector("[data-generar]").addEventListener("click", function () {
      var longitud = parseInt(caja.querySelector("[data-gen-longitud]").value, 10) || 20;
      longitud = Math.max(8, Math.min(128, longitud));
      var clases = Array.prototype.filter
        .call(caja.querySelectorAll("[data-gen-clase]"), function (c) {
          return c.checked;
        })
        .map(function (c) {
          return CLASES[c.getAttribute("data-gen-clase")];
        });
      if (!clases.length) clases = [CLASES.minusculas, CLASES.mayusculas, CLASES.digitos];
      campo.value = generar(longitud, clases);
      medir();
    });
    mostrar.addEventListener("click", function () {
      var visible = campo.type === "password";
      campo.type = visible ? "text" : "password";
      mostrar.setAttribute("aria-pressed", visible ? "true" : "false");
      mostrar.textContent = caja.getAttribute(visible ? "data-texto-ocultar" : "data-texto-mostrar");
    });
    medir();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-generador]"), prepararGenerador);
  });
})();
