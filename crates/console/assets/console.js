// Prossimo console: light progressive enhancement. Every page works without this file;
// with it, the audience editor checks the definition as you type.
"use strict";

(function () {
  const editor = document.getElementById("audience-editor");
  if (!editor) return;
  const definition = editor.querySelector("#definition");
  const status = document.getElementById("definition-status");
  const slug = editor.querySelector("#slug");
  const csrf = document.body.dataset.csrf || "";
  let timer = null;
  let asked = 0;

  function show(result) {
    status.textContent = "";
    const box = document.createElement("div");
    if (result.valid) {
      box.className = "ok";
      box.textContent = status.dataset.valid + " ";
      const code = document.createElement("code");
      code.textContent = result.canonical;
      box.appendChild(code);
      definition.removeAttribute("aria-invalid");
    } else if (result.problem) {
      const p = result.problem;
      box.className = "problem";
      box.dataset.line = p.line;
      box.dataset.column = p.column;
      const strong = document.createElement("strong");
      strong.className = "error";
      strong.textContent = p.message;
      box.appendChild(strong);
      box.appendChild(document.createTextNode(
        " (" + status.dataset.line + " " + p.line + ", " + status.dataset.column + " " + p.column + ")"));
      const pre = document.createElement("pre");
      pre.textContent = p.excerpt;
      box.appendChild(pre);
      definition.setAttribute("aria-invalid", "true");
    } else {
      box.className = "problem";
      const strong = document.createElement("strong");
      strong.className = "error";
      strong.textContent = result.message || "";
      box.appendChild(strong);
      definition.setAttribute("aria-invalid", "true");
    }
    status.appendChild(box);
  }

  async function check() {
    const text = definition.value;
    if (!text.trim()) return;
    const ticket = ++asked;
    try {
      const response = await fetch("/audiences/check", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ definition: text, slug: slug && slug.readOnly ? slug.value : null }),
      });
      if (!response.ok || ticket !== asked) return;
      show(await response.json());
    } catch (_) {
      // Offline or the server went away: the buttons still check on submit.
    }
  }

  definition.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
})();
