// A small asciicast v2 player: a terminal screen that understands what serial consoles
// print (text, CR/LF/BS/TAB, cursor movement, erasing, SGR colours), ignores the rest, and
// draws with textContent. Used by report.js as R2SPlayer.mount(container, cast).
"use strict";

const R2SPlayer = (function () {
  const DEFAULT_ATTR = { fg: -1, bg: -1, bold: false, inverse: false };
  // The characters the harness's reports escape beyond control characters
  // (escape::needs_escape): line and paragraph separators and bidi formatting.
  const REORDERING = /^[\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]$/;

  function Screen(width, height) {
    this.w = width;
    this.h = height;
    this.reset();
  }

  Screen.prototype.reset = function () {
    this.rows = [];
    for (let y = 0; y < this.h; y++) this.rows.push(this.blankRow());
    this.x = 0;
    this.y = 0;
    this.saved = [0, 0];
    this.attr = Object.assign({}, DEFAULT_ATTR);
    this.state = "text";
    this.params = "";
    this.pendingWrap = false;
  };

  Screen.prototype.blankRow = function () {
    const row = [];
    for (let x = 0; x < this.w; x++) row.push([" ", DEFAULT_ATTR]);
    return row;
  };

  Screen.prototype.lineFeed = function () {
    if (this.y === this.h - 1) {
      this.rows.shift();
      this.rows.push(this.blankRow());
    } else {
      this.y++;
    }
  };

  Screen.prototype.clamp = function () {
    this.x = Math.max(0, Math.min(this.w - 1, this.x));
    this.y = Math.max(0, Math.min(this.h - 1, this.y));
    this.pendingWrap = false;
  };

  Screen.prototype.put = function (ch) {
    if (this.pendingWrap) {
      this.x = 0;
      this.lineFeed();
      this.pendingWrap = false;
    }
    this.rows[this.y][this.x] = [ch, this.attr];
    if (this.x === this.w - 1) this.pendingWrap = true;
    else this.x++;
  };

  Screen.prototype.erase = function (y, from, to) {
    for (let x = Math.max(0, from); x < Math.min(this.w, to); x++) this.rows[y][x] = [" ", DEFAULT_ATTR];
  };

  Screen.prototype.write = function (text) {
    for (const ch of text) this.feed(ch);
  };

  Screen.prototype.feed = function (ch) {
    const code = ch.codePointAt(0);
    switch (this.state) {
      case "esc":
        this.escape(ch);
        return;
      case "csi":
        if (code >= 0x40 && code <= 0x7e) {
          this.state = "text";
          this.csi(ch, this.params);
        } else if (this.params.length < 64) {
          this.params += ch;
        }
        return;
      case "osc":
        if (code === 7) this.state = "text";
        else if (code === 0x1b) this.state = "osc-esc";
        return;
      case "osc-esc":
        this.state = "text";
        return;
      case "charset":
        this.state = "text";
        return;
    }
    if (code === 0x1b) {
      this.state = "esc";
    } else if (code === 0x0a || code === 0x0b || code === 0x0c) {
      this.pendingWrap = false;
      this.lineFeed();
    } else if (code === 0x0d) {
      this.x = 0;
      this.pendingWrap = false;
    } else if (code === 0x08) {
      this.x = Math.max(0, this.x - 1);
      this.pendingWrap = false;
    } else if (code === 0x09) {
      this.x = Math.min(this.w - 1, (Math.floor(this.x / 8) + 1) * 8);
    } else if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) {
      // Other control characters move nothing.
    } else if (REORDERING.test(ch)) {
      // A terminal draws no bidi override or line separator; in a page they would reorder or
      // break the row around them.
    } else {
      this.put(ch);
    }
  };

  Screen.prototype.escape = function (ch) {
    this.state = "text";
    switch (ch) {
      case "[": this.state = "csi"; this.params = ""; break;
      case "]": this.state = "osc"; break;
      case "(": case ")": case "*": case "+": this.state = "charset"; break;
      case "7": this.saved = [this.x, this.y]; break;
      case "8": [this.x, this.y] = this.saved; this.clamp(); break;
      case "D": this.lineFeed(); break;
      case "E": this.x = 0; this.lineFeed(); break;
      case "M":
        if (this.y === 0) { this.rows.pop(); this.rows.unshift(this.blankRow()); } else this.y--;
        break;
      case "c": this.reset(); break;
    }
  };

  Screen.prototype.csi = function (final, raw) {
    const priv = raw.startsWith("?");
    const nums = (priv ? raw.slice(1) : raw).split(";").map((p) => parseInt(p, 10));
    const n = (i, d) => (Number.isFinite(nums[i]) && nums[i] > 0 ? nums[i] : d);
    if (priv) return; // modes such as ?25l (cursor visibility) change nothing drawn here
    switch (final) {
      case "A": this.y -= n(0, 1); this.clamp(); break;
      case "B": case "e": this.y += n(0, 1); this.clamp(); break;
      case "C": case "a": this.x += n(0, 1); this.clamp(); break;
      case "D": this.x -= n(0, 1); this.clamp(); break;
      case "E": this.x = 0; this.y += n(0, 1); this.clamp(); break;
      case "F": this.x = 0; this.y -= n(0, 1); this.clamp(); break;
      case "G": case "`": this.x = n(0, 1) - 1; this.clamp(); break;
      case "d": this.y = n(0, 1) - 1; this.clamp(); break;
      case "H": case "f": this.y = n(0, 1) - 1; this.x = n(1, 1) - 1; this.clamp(); break;
      case "J": {
        const mode = nums[0] || 0;
        if (mode === 0) {
          this.erase(this.y, this.x, this.w);
          for (let y = this.y + 1; y < this.h; y++) this.erase(y, 0, this.w);
        } else if (mode === 1) {
          this.erase(this.y, 0, this.x + 1);
          for (let y = 0; y < this.y; y++) this.erase(y, 0, this.w);
        } else {
          for (let y = 0; y < this.h; y++) this.erase(y, 0, this.w);
        }
        break;
      }
      case "K": {
        const mode = nums[0] || 0;
        if (mode === 0) this.erase(this.y, this.x, this.w);
        else if (mode === 1) this.erase(this.y, 0, this.x + 1);
        else this.erase(this.y, 0, this.w);
        break;
      }
      case "X": this.erase(this.y, this.x, this.x + n(0, 1)); break;
      case "P": {
        const row = this.rows[this.y];
        row.splice(this.x, Math.min(n(0, 1), this.w - this.x));
        while (row.length < this.w) row.push([" ", DEFAULT_ATTR]);
        break;
      }
      case "@": {
        const row = this.rows[this.y];
        const count = Math.min(n(0, 1), this.w - this.x);
        for (let i = 0; i < count; i++) row.splice(this.x, 0, [" ", DEFAULT_ATTR]);
        row.length = this.w;
        break;
      }
      case "L": case "M": {
        const count = Math.min(n(0, 1), this.h - this.y);
        for (let i = 0; i < count; i++) {
          if (final === "L") { this.rows.splice(this.y, 0, this.blankRow()); this.rows.pop(); }
          else { this.rows.splice(this.y, 1); this.rows.push(this.blankRow()); }
        }
        break;
      }
      case "s": this.saved = [this.x, this.y]; break;
      case "u": [this.x, this.y] = this.saved; this.clamp(); break;
      case "m": this.sgr(raw === "" ? [0] : nums.map((v) => (Number.isFinite(v) ? v : 0))); break;
    }
  };

  Screen.prototype.sgr = function (codes) {
    const a = Object.assign({}, this.attr);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) Object.assign(a, DEFAULT_ATTR);
      else if (c === 1) a.bold = true;
      else if (c === 22) a.bold = false;
      else if (c === 7) a.inverse = true;
      else if (c === 27) a.inverse = false;
      else if (c >= 30 && c <= 37) a.fg = c - 30;
      else if (c === 39) a.fg = -1;
      else if (c >= 40 && c <= 47) a.bg = c - 40;
      else if (c === 49) a.bg = -1;
      else if (c >= 90 && c <= 97) a.fg = c - 90 + 8;
      else if (c >= 100 && c <= 107) a.bg = c - 100 + 8;
      else if (c === 38 || c === 48) {
        // 256 colours: the first 16 are drawn, others fall back; 24-bit colour is skipped.
        if (codes[i + 1] === 5) {
          const v = codes[i + 2];
          if (v < 16) { if (c === 38) a.fg = v; else a.bg = v; }
          i += 2;
        } else if (codes[i + 1] === 2) {
          i += 4;
        }
      }
    }
    this.attr = a;
  };

  function className(attr) {
    let fg = attr.fg, bg = attr.bg;
    if (attr.inverse) { const t = fg; fg = bg < 0 ? 16 : bg; bg = t < 0 ? 17 : t; }
    let c = "";
    if (fg >= 0) c += " f" + fg;
    if (bg >= 0) c += " b" + bg;
    if (attr.bold) c += " bold";
    return c.trim();
  }

  /// Draws the screen into `pre`, one line element per row, runs of one style as spans.
  Screen.prototype.draw = function (pre) {
    while (pre.firstChild) pre.removeChild(pre.firstChild);
    for (const row of this.rows) {
      const line = document.createElement("div");
      line.className = "term-row";
      let run = "", runClass = null;
      const flush = () => {
        if (run === "") return;
        if (runClass) {
          const span = document.createElement("span");
          span.className = runClass;
          span.textContent = run;
          line.appendChild(span);
        } else {
          line.appendChild(document.createTextNode(run));
        }
        run = "";
      };
      for (const [ch, attr] of row) {
        const c = className(attr);
        if (c !== runClass) { flush(); runClass = c; }
        run += ch;
      }
      flush();
      pre.appendChild(line);
    }
  };

  /// The screen's text, rows trimmed, for tests and copying.
  Screen.prototype.text = function () {
    return this.rows.map((row) => row.map((c) => c[0]).join("").replace(/\s+$/, "")).join("\n");
  };

  function mount(container, cast) {
    const events = cast.events.filter((e) => e[1] === "o" || e[1] === "m");
    const end = events.length ? events[events.length - 1][0] : 0;
    const screen = new Screen(cast.width, cast.height);
    const controls = document.createElement("div");
    controls.className = "player-controls";
    const play = document.createElement("button");
    play.type = "button";
    play.textContent = "Play";
    const speed = document.createElement("select");
    for (const s of [1, 2, 4, 8, 16]) {
      const o = document.createElement("option");
      o.value = String(s);
      o.textContent = s + "×";
      speed.appendChild(o);
    }
    const seek = document.createElement("input");
    seek.type = "range";
    seek.min = "0";
    seek.max = String(end);
    seek.step = "0.01";
    seek.setAttribute("aria-label", "position in the recording");
    const clock = document.createElement("span");
    clock.className = "player-clock";
    const marker = document.createElement("span");
    marker.className = "player-marker";
    controls.append(play, speed, seek, clock, marker);
    const pre = document.createElement("pre");
    pre.className = "term";
    container.append(controls, pre);

    let position = 0, next = 0, playing = false, last = 0;
    const show = () => {
      screen.draw(pre);
      seek.value = String(position);
      clock.textContent = position.toFixed(1) + "s / " + end.toFixed(1) + "s";
      pre.dataset.position = position.toFixed(3);
    };
    const advance = (to) => {
      while (next < events.length && events[next][0] <= to) {
        const [, kind, data] = events[next++];
        if (kind === "o") screen.write(data);
        else marker.textContent = data;
      }
      position = to;
    };
    const seekTo = (t) => {
      screen.reset();
      next = 0;
      marker.textContent = "";
      advance(Math.max(0, Math.min(end, t)));
      show();
    };
    const frame = (now) => {
      if (!playing) return;
      advance(Math.min(end, position + ((now - last) / 1000) * Number(speed.value)));
      last = now;
      show();
      if (position >= end) stop();
      else requestAnimationFrame(frame);
    };
    const stop = () => { playing = false; play.textContent = "Play"; };
    play.addEventListener("click", () => {
      if (playing) { stop(); return; }
      if (position >= end) seekTo(0);
      playing = true;
      play.textContent = "Pause";
      last = performance.now();
      requestAnimationFrame(frame);
    });
    seek.addEventListener("input", () => { stop(); seekTo(Number(seek.value)); });
    // The last screen first: where the console ended is what a reader looks for.
    seekTo(end);
    return { screen, seekTo };
  }

  return { Screen, mount };
})();
