// Prossimo console: light progressive enhancement. Every page works without this file;
// with it, the audience editor checks the definition as you type.
"use strict";

// Checks an editor's text as you type: POSTs it as JSON (with the CSRF token) 300 ms after
// the last keystroke and hands the answer to `show`; an older answer never overwrites a
// newer one, and a signed-out page goes to the sign-in.
function checkAsYouType(field, url, bodyOf, show) {
  const csrf = document.body.dataset.csrf || "";
  let timer = null;
  let asked = 0;
  async function check() {
    const text = field.value;
    if (!text.trim()) return;
    const ticket = ++asked;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(bodyOf(text)),
      });
      if (response.status === 401) {
        window.location.assign("/login");
        return;
      }
      if (!response.ok || ticket !== asked) return;
      show(await response.json());
    } catch (_) {
      // Offline or the server went away: the buttons still check on submit.
    }
  }
  field.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
}

(function () {
  const editor = document.getElementById("audience-editor");
  if (!editor) return;
  const definition = editor.querySelector("#definition");
  const status = document.getElementById("definition-status");
  const slug = editor.querySelector("#slug");

  function show(result) {
    status.textContent = "";
    const box = document.createElement("div");
    if (result.valid) {
      box.className = "ok";
      box.textContent = status.dataset.valid + " " + status.dataset.canonical + " ";
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

  checkAsYouType(definition, "/audiences/check",
    (text) => ({ definition: text, slug: slug && slug.readOnly ? slug.value : null }), show);
})();

// Live events: poll for entries newer than the last one shown and put them on top.
(function () {
  const table = document.getElementById("live");
  if (!table) return;
  const body = table.tBodies[0];
  const empty = document.getElementById("live-empty");
  const pause = document.getElementById("live-pause");
  let last = Number(table.dataset.last || 0);
  let paused = false;
  pause.hidden = false;
  pause.addEventListener("click", function () {
    paused = !paused;
    pause.textContent = paused ? pause.dataset.resume : pause.dataset.pause;
    pause.setAttribute("aria-pressed", paused ? "true" : "false");
  });

  function cell(row, text, className) {
    const td = row.insertCell();
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function badge(td, text, kind) {
    const span = document.createElement("span");
    span.className = "badge " + kind;
    span.textContent = text;
    td.appendChild(span);
  }

  function render(e) {
    const row = document.createElement("tr");
    row.dataset.seq = e.seq;
    row.className = (e.accepted ? "accepted" : "refused") + " fresh";
    cell(row, e.time, "nowrap");
    if (e.accepted) {
      badge(cell(row), table.dataset.accepted, "ok");
      cell(row, e.source);
      const what = cell(row);
      const strong = document.createElement("strong");
      strong.textContent = e.kind;
      what.appendChild(strong);
      what.appendChild(document.createTextNode(" " + e.what));
      if (e.more > 0) {
        const more = document.createElement("span");
        more.className = "muted small";
        more.textContent = " +" + e.more + " " + table.dataset.more;
        what.appendChild(more);
      }
      what.appendChild(document.createElement("br"));
      const id = document.createElement("code");
      id.className = "small";
      id.textContent = e.message_id;
      what.appendChild(id);
      const who = document.createElement("code");
      who.textContent = e.who;
      cell(row).appendChild(who);
      const channel = cell(row, undefined, "nowrap");
      const chip = document.createElement("span");
      chip.className = "ch ch-" + e.channel;
      chip.setAttribute("aria-hidden", "true");
      chip.textContent = e.icon;
      channel.appendChild(chip);
      channel.appendChild(document.createTextNode(" " + e.channel_label));
    } else {
      badge(cell(row), table.dataset.refused + " " + e.status, "bad");
      cell(row, e.source);
      const what = cell(row);
      what.colSpan = 3;
      const strong = document.createElement("strong");
      strong.textContent = e.code;
      what.appendChild(strong);
      if (!e.problems.length) what.appendChild(document.createTextNode(": " + e.message));
      if (e.more > 0) {
        const more = document.createElement("span");
        more.className = "muted small";
        more.textContent = " +" + e.more + " " + table.dataset.similar;
        what.appendChild(more);
      }
      if (e.problems.length) {
        const list = document.createElement("ul");
        list.className = "problems";
        for (const p of e.problems) {
          const li = document.createElement("li");
          li.textContent = p;
          list.appendChild(li);
        }
        what.appendChild(list);
      }
    }
    body.insertBefore(row, body.firstChild);
  }

  async function poll() {
    if (!paused) {
      try {
        const response = await fetch("/live/entries?after=" + last, { headers: { accept: "application/json" } });
        if (response.status === 401) {
          window.location.assign("/login");
          return;
        }
        if (response.ok) {
          const data = await response.json();
          if (data.reset) {
            // The server restarted: its feed starts over.
            while (body.rows.length) body.deleteRow(0);
            last = 0;
          }
          for (const e of data.entries) {
            render(e);
            last = Math.max(last, e.seq);
          }
          if (data.entries.length) empty.hidden = true;
          while (body.rows.length > 300) body.deleteRow(body.rows.length - 1);
        }
      } catch (_) {
        // The server restarted or the network dropped: try again on the next tick.
      }
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();

// A new admin token is shown once: take the form's address out of the location bar so a
// reload shows the settings page instead of creating another token.
(function () {
  if (document.getElementById("new-token") && window.history.replaceState) {
    window.history.replaceState(null, "", "/settings#tokens");
  }
})();

// The journey editor: check the JSON as you type, every problem with its step and field.
(function () {
  const editor = document.getElementById("journey-editor");
  if (!editor) return;
  const definition = editor.querySelector("#definition");
  const status = document.getElementById("definition-status");

  function line(className, text) {
    const box = document.createElement("div");
    box.className = className;
    const strong = document.createElement("strong");
    if (className === "problem") strong.className = "error";
    strong.textContent = text;
    box.appendChild(strong);
    return box;
  }

  function show(result) {
    status.textContent = "";
    if (result.valid) {
      status.appendChild(line("ok", status.dataset.valid + " " + result.steps + " " + status.dataset.steps));
      definition.removeAttribute("aria-invalid");
      return;
    }
    for (const p of result.problems) {
      let text = (p.step ? p.step + " › " : "") + p.field + ": " + p.reason;
      if (p.line) text += " (" + status.dataset.line + " " + p.line + (p.column ? ", " + status.dataset.column + " " + p.column : "") + ")";
      status.appendChild(line("problem", text));
    }
    definition.setAttribute("aria-invalid", "true");
  }

  checkAsYouType(definition, "/journeys/check", (text) => ({ definition: text }), show);
})();

// A journey's page: the counts on its steps and arrows follow customers as they flow.
(function () {
  const figure = document.querySelector(".journey-graph[data-counts]");
  if (!figure) return;
  const url = figure.dataset.counts;

  function set(selector, value) {
    for (const node of document.querySelectorAll(selector)) {
      if (node.textContent !== String(value)) node.textContent = String(value);
    }
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const response = await fetch(url, { headers: { accept: "application/json" } });
        if (response.ok) {
          const counts = await response.json();
          set('[data-total="entered"]', counts.entered);
          set('[data-total="active"]', counts.active);
          set('[data-total="converted"]', counts.exits.goal || 0);
          for (const node of document.querySelectorAll("[data-waiting]")) {
            const step = counts.steps[node.dataset.waiting];
            node.textContent = String(step ? step.waiting : 0);
          }
          for (const node of document.querySelectorAll("[data-passed]")) {
            const step = counts.steps[node.dataset.passed];
            let passed = 0;
            if (step) for (const n of Object.values(step.outcomes)) passed += n;
            node.textContent = String(passed);
          }
          for (const node of document.querySelectorAll("[data-edge]")) {
            const [from, outcome] = node.dataset.edge.split("|");
            const step = counts.steps[from];
            node.textContent = String((step && step.outcomes[outcome]) || 0);
          }
        }
      } catch (_) {
        // The server went away for a moment: try again at the next tick.
      }
    }
    setTimeout(poll, 3000);
  }
  setTimeout(poll, 3000);
})();
