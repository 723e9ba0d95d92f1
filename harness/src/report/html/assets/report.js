// Draws the report from the JSON blocks of the page. All text goes in with textContent or
// text nodes: console output is data, never markup.
"use strict";

(function () {
  // The page checks itself: script errors and blocked fetches are counted where a reader (or
  // a test) can see them.
  const selfcheck = document.createElement("div");
  selfcheck.id = "r2s-selfcheck";
  selfcheck.hidden = true;
  selfcheck.dataset.errors = "0";
  selfcheck.dataset.cspViolations = "0";
  selfcheck.dataset.ready = "no";
  document.body.appendChild(selfcheck);
  const problem = (key, text) => {
    selfcheck.dataset[key] = String(Number(selfcheck.dataset[key]) + 1);
    const item = document.createElement("p");
    item.textContent = text;
    selfcheck.appendChild(item);
  };
  window.addEventListener("error", (e) => problem("errors", "error: " + e.message));
  document.addEventListener("securitypolicyviolation", (e) =>
    problem("cspViolations", "blocked: " + e.violatedDirective + " " + e.blockedURI));

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  const secs = (s) => s.toFixed(1) + "s";
  const stamp = (t) => t.toFixed(3).padStart(8, " ");

  function readBlocks(cls) {
    return Array.from(document.querySelectorAll('script[type="application/json"].' + cls)).map((b) =>
      JSON.parse(b.textContent));
  }

  const STAGE_COLOURS = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"];
  const BUILT_IN = ["uboot", "menu", "kernel", "stage-1", "stage-2", "login", "body", "restore"];
  function stageClass(name) {
    const i = BUILT_IN.indexOf(name);
    if (i >= 0) return "stage-" + name;
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return STAGE_COLOURS[h % STAGE_COLOURS.length];
  }

  function summary(run, scenarios) {
    const verdict = run.failed > 0 || run.errors > 0 ? "fail" : "pass";
    const facts = el("dl", { class: "facts" });
    const fact = (term, value) => {
      if (value === null || value === undefined || value === "") return;
      facts.append(el("dt", {}, term), el("dd", {}, value));
    };
    fact("image", run.image);
    fact("against", run.image === run.against ? null : run.against);
    fact("board", run.board);
    fact("target", run.target);
    fact("harness", "r2s-harness " + run.harness_version);
    fact("written", run.generated);
    if (run.baseline) {
      fact("baseline", run.baseline.source + " (a stage regresses beyond +" + run.baseline.max_regression +
        "% and +" + run.baseline.floor.toFixed(1) + "s)");
    }
    const header = el("header", { class: "run " + verdict },
      el("h1", {}, el("span", { class: "badge " + verdict }, verdict === "pass" ? "PASS" : "FAIL"),
        " " + run.passed + " passed, " + run.failed + " failed" +
          (run.errors ? ", " + run.errors + (run.errors === 1 ? " error" : " errors") : "") +
          (run.skipped ? ", " + run.skipped + " skipped" : "") +
          (run.flaky ? ", " + run.flaky + " flaky" : "")),
      facts);
    if (run.setup && run.setup.length) {
      header.append(el("details", { class: "setup" }, el("summary", {}, "Before booting"),
        el("ul", {}, ...run.setup.map((line) => el("li", {}, line)))));
    }
    const table = el("table", { class: "results" },
      el("thead", {}, el("tr", {}, ...["", "scenario", "duration", "start", "stages"].map((h) => el("th", {}, h)))));
    const body = el("tbody");
    scenarios.forEach((s, i) => {
      body.append(el("tr", { class: s.verdict },
        el("td", {}, el("span", { class: "badge " + s.verdict }, s.verdict.toUpperCase())),
        el("td", {}, el("a", { href: "#scenario-" + i }, s.name)),
        el("td", { class: "num" }, secs(s.duration)),
        el("td", {}, s.origin),
        el("td", { class: "stages-text" }, s.timeline.stages.map((b) => b.name + " " + secs(b.duration)).join(", "))));
    });
    table.append(body);
    return [header, table];
  }

  /// The scale of a scenario's timeline: its end, or the baseline's if that is later.
  function scaleOf(timeline) {
    let scale = timeline.total;
    for (const b of timeline.stages) scale = Math.max(scale, b.start + b.duration);
    if (timeline.baseline) {
      scale = Math.max(scale, timeline.baseline.total);
      for (const b of timeline.baseline.stages) scale = Math.max(scale, b.start + b.duration);
    }
    return scale > 0 ? scale : 1;
  }

  const pct = (value, scale) => (100 * value) / scale;

  function track(label, bars, scale, kind) {
    const lane = el("div", { class: "track " + kind, "data-scale": scale.toFixed(3) });
    for (const bar of bars) {
      const width = pct(bar.duration, scale);
      const node = el("div", {
        class: "bar " + stageClass(bar.name) + (bar.regressed ? " regressed" : ""),
        "data-stage": bar.name,
        "data-start": bar.start.toFixed(3),
        "data-duration": bar.duration.toFixed(3),
        "data-width-pct": width.toFixed(4),
        title: bar.name + ": " + secs(bar.duration) + " from " + secs(bar.start) +
          (bar.baseline !== null && bar.baseline !== undefined ? " (baseline " + secs(bar.baseline) + ")" : ""),
      }, el("span", { class: "bar-label" }, bar.name + " " + secs(bar.duration) + (bar.regressed ? " ▲" : "")));
      node.style.left = pct(bar.start, scale) + "%";
      node.style.width = width + "%";
      lane.append(node);
    }
    return el("div", { class: "lane" }, el("div", { class: "lane-label" }, label), lane);
  }

  function axis(scale) {
    const ticks = el("div", { class: "axis" });
    const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600].find((s) => scale / s <= 10) || 1200;
    for (let t = 0; t <= scale + 1e-9; t += step) {
      const tick = el("span", { class: "tick" }, secs(t));
      tick.style.left = pct(t, scale) + "%";
      ticks.append(tick);
    }
    return el("div", { class: "lane" }, el("div", { class: "lane-label" }, ""), ticks);
  }

  function timelineView(t, failure) {
    const scale = scaleOf(t);
    const box = el("div", { class: "timeline", "data-scale": scale.toFixed(3) });
    const now = track("this run", t.stages, scale, "now");
    const notes = now.querySelector(".track");
    for (const note of t.notes) {
      const mark = el("div", { class: "note-mark", title: secs(note.t) + " " + note.text });
      mark.style.left = pct(note.t, scale) + "%";
      notes.append(mark);
    }
    if (failure) {
      const mark = el("div", { class: "fail-mark", title: "failed at " + secs(failure.at) + ": " + failure.reason });
      mark.style.left = pct(failure.at, scale) + "%";
      notes.append(mark);
    }
    box.append(now);
    if (t.baseline) box.append(track("baseline", t.baseline.stages, scale, "then"));
    box.append(axis(scale));
    const table = el("table", { class: "stage-table" });
    const head = ["stage", "start", "duration"];
    if (t.baseline) head.push("baseline", "change");
    table.append(el("tr", {}, ...head.map((h) => el("th", {}, h))));
    for (const b of t.stages) {
      const row = el("tr", { class: b.regressed ? "regressed" : null },
        el("td", {}, el("span", { class: "swatch " + stageClass(b.name) }), b.name),
        el("td", { class: "num" }, secs(b.start)), el("td", { class: "num" }, secs(b.duration)));
      if (t.baseline) {
        const then = b.baseline;
        row.append(el("td", { class: "num" }, then === null || then === undefined ? "–" : secs(then)),
          el("td", { class: "num" }, then === null || then === undefined ? "" :
            (then > 0 ? ((b.duration - then) / then * 100 >= 0 ? "+" : "") + ((b.duration - then) / then * 100).toFixed(0) + "%" : "") +
            (b.regressed ? " REGRESSION" : "")));
      }
      table.append(row);
    }
    const parts = [box, table];
    if (t.baseline && t.baseline.not_compared) parts.push(el("p", { class: "muted" }, "Baseline: " + t.baseline.not_compared));
    if (t.notes.length) {
      parts.push(el("ul", { class: "notes" }, ...t.notes.map((n) =>
        el("li", {}, el("span", { class: "t" }, secs(n.t)), " " + n.text))));
    }
    return parts;
  }

  function lineNode(line, marked) {
    return el("div", { class: "line " + line.kind + (marked ? " mark" : ""), "data-t": line.t.toFixed(3) },
      el("span", { class: "t" }, stamp(line.t)),
      el("span", { class: "text" }, (line.kind === "in" ? ">> " : line.kind === "note" ? "-- " : "") + line.text));
  }

  function failureView(f) {
    const facts = el("dl", { class: "facts" });
    const fact = (term, value) => { if (value) facts.append(el("dt", {}, term), el("dd", {}, value)); };
    fact("step", f.step > 0 ? f.step + ": " + f.step_description : "before the first step");
    fact("expected", f.expected);
    fact("reason", f.reason);
    fact("hint", f.hint);
    fact("at", secs(f.at) + " (stage " + f.stage + ")");
    const excerpt = el("div", { class: "excerpt lines" }, ...f.excerpt.map((l, i) => lineNode(l, i === f.mark)));
    return el("section", { class: "failure" }, el("h3", {}, "Failure"), facts,
      el("h4", {}, "Console around the failure"), excerpt);
  }

  const searchable = [];

  function transcriptView(s) {
    const tr = s.transcript;
    const details = el("details", { class: "transcript" },
      el("summary", {}, "Transcript (" + tr.lines.length + " lines" + (tr.file ? ", " + tr.file : "") + ")"));
    if (tr.error) details.append(el("p", { class: "muted" }, tr.error));
    const lines = el("div", { class: "lines" });
    for (const line of tr.lines) {
      const node = lineNode(line, false);
      searchable.push({ node, details, lower: (stamp(line.t) + " " + line.text).toLowerCase() });
      lines.append(node);
    }
    details.append(lines);
    return details;
  }

  function interactiveView(part, n) {
    const details = el("details", { class: "interactive", open: "" },
      el("summary", {}, "Interactive session " + (n + 1) + ": " + part.why +
        (part.ended ? " (" + part.ended + ")" : " (the transcript ends inside it)")));
    details.append(el("div", { class: "lines" }, ...part.lines.map(l => lineNode(l, false))));
    return details;
  }

  function replayView(s) {
    const c = s.cast;
    const details = el("details", { class: "replay" },
      el("summary", {}, "Replay of the console" + (c.file ? " (" + c.file + ")" : "")));
    if (c.error) details.append(el("p", { class: "muted" }, c.error));
    if (c.cast) {
      if (c.cast.cut) details.append(el("p", { class: "muted" }, c.cast.cut));
      const box = el("div", { class: "player" });
      details.append(box);
      R2SPlayer.mount(box, c.cast);
    }
    return details;
  }

  function scenarioView(s, i) {
    const section = el("section", { class: "scenario " + s.verdict, id: "scenario-" + i, "data-name": s.name },
      el("h2", {}, el("span", { class: "badge " + s.verdict }, s.verdict.toUpperCase()), " " + s.name + " ",
        el("span", { class: "muted" }, secs(s.duration))),
      el("p", { class: "muted" }, s.source + " · " + s.origin));
    if (s.tries > 1) {
      section.append(el("section", { class: "tries" },
        el("h3", {}, s.verdict === "flaky" ? "FLAKY: passed on try " + s.tries : "Failed all " + s.tries + " tries"),
        el("ul", {}, ...s.failed_tries.map((why, t) => el("li", {}, "try " + (t + 1) + " failed: " + why)))));
    }
    if (s.skipped) {
      section.append(el("p", { class: "skipped" }, "Not run: " + s.skipped));
      return section;
    }
    if (s.error) {
      section.append(el("section", { class: "failure" }, el("h3", {}, "Could not run"), el("p", {}, s.error)));
    }
    section.append(...timelineView(s.timeline, s.failure));
    if (s.failure) section.append(failureView(s.failure));
    section.append(...s.interactive.map(interactiveView));
    section.append(transcriptView(s), replayView(s));
    return section;
  }

  function searchBar() {
    const input = el("input", { type: "search", id: "search", placeholder: "Search the transcripts", "aria-label": "search the transcripts" });
    const only = el("input", { type: "checkbox", id: "search-only" });
    const count = el("span", { id: "search-count", "data-count": "0" });
    let timer = null;
    const run = (updateUrl) => {
      const q = input.value.toLowerCase();
      let hits = 0, first = null;
      const opened = new Set();
      for (const item of searchable) {
        const hit = q !== "" && item.lower.includes(q);
        item.node.classList.toggle("hit", hit);
        item.node.classList.toggle("filtered", q !== "" && only.checked && !hit);
        if (hit) {
          hits++;
          if (!first) first = item.node;
          opened.add(item.details);
        }
      }
      for (const d of opened) d.open = true;
      count.dataset.count = String(hits);
      count.textContent = q === "" ? "" : hits + (hits === 1 ? " matching line" : " matching lines");
      if (first) first.scrollIntoView({ block: "center" });
      if (updateUrl) history.replaceState(null, "", q === "" ? "#" : "#search=" + encodeURIComponent(input.value));
    };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => run(true), 150); });
    only.addEventListener("change", () => run(true));
    const fromUrl = () => {
      const m = /^#search=(.*)$/.exec(location.hash);
      if (!m) return;
      try { input.value = decodeURIComponent(m[1]); } catch (e) { input.value = m[1]; }
      run(false);
    };
    window.addEventListener("hashchange", fromUrl);
    return { bar: el("div", { class: "search" }, input, el("label", {}, only, " only matching lines"), count), fromUrl };
  }

  /// Records what was drawn, so that a reader of the DOM (a test) can compare it with what the
  /// page meant to draw.
  function measure() {
    for (const lane of document.querySelectorAll(".track")) {
      lane.dataset.px = lane.getBoundingClientRect().width.toFixed(2);
      for (const bar of lane.querySelectorAll(".bar")) bar.dataset.px = bar.getBoundingClientRect().width.toFixed(2);
    }
  }

  const run = readBlocks("r2s-run")[0];
  const scenarios = readBlocks("r2s-scenario");
  const main = document.getElementById("report");
  main.append(...summary(run, scenarios));
  const search = searchBar();
  main.append(search.bar);
  scenarios.forEach((s, i) => main.append(scenarioView(s, i)));
  search.fromUrl();
  measure();
  selfcheck.dataset.ready = "yes";
})();
