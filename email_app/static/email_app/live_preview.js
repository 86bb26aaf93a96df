// Live preview on the email template page: re-render the unsaved subject and bodies
// (through the admin's live-preview view) a moment after each edit.
(function () {
  "use strict";
  const FIELDS = ["subject", "text_body", "html_body"];
  let timer = null;

  function text(id, value) {
    const element = document.getElementById(id);
    if (element) element.textContent = value;
  }

  async function refresh(form) {
    const data = new FormData();
    for (const name of FIELDS) {
      const input = form.querySelector(`[name="${name}"]`);
      data.append(name, input ? input.value : "");
    }
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    const url = window.location.pathname.replace(/(add|[^/]+\/change)\/$/, "live-preview/");
    const response = await fetch(url, { method: "POST", body: data, credentials: "same-origin" });
    const body = await response.json();
    text("sv-preview-error", body.error || "");
    if (!response.ok) return;
    text("sv-preview-subject", body.subject);
    text("sv-preview-text", body.text);
    text("sv-preview-variables", body.variables.join(", ") || "(none)");
    const frame = document.getElementById("sv-preview-html");
    if (frame) frame.srcdoc = body.html;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const form = document.getElementById("emailtemplate_form");
    if (!form || !document.getElementById("sv-preview-html")) return;
    for (const name of FIELDS) {
      const input = form.querySelector(`[name="${name}"]`);
      if (!input) continue;
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { refresh(form); }, 300);
      });
    }
    refresh(form);
  });
})();
