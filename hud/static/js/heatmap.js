// The liquidity heatmap in WebGL2: one texel per price and second in a ring texture of time
// columns (red: bid depth, green: ask depth, blue and alpha: the physics layer's bid and ask
// value). A column is uploaded once when its second arrives; every frame is one quad.
const NO_VALUE = -1e30;
const MAX_BLOCK = 256; // columns per upload
export const BID_RGB = [0.18, 0.77, 1.0]; // #2ec4ff
export const ASK_RGB = [1.0, 0.48, 0.24]; // #ff7a3d

// Each physics layer: where its value lives, how it is coloured.
export const LAYERS = {
  depth: { id: 0, label: "resting depth (depth_qty_end)" },
  pull_add: {
    id: 1, table: "vacuum_surface_1s", column: "pull_add_log", kind: 1, domain: [-2.5, 2.5],
    colors: [[0.24, 0.86, 0.52], [1.0, 0.24, 0.43]], label: "pull/add log: green added, red pulled",
  },
  vacuum: {
    id: 2, table: "vacuum_score_1s", column: "vacuum_score", kind: 2, domain: [0, 1],
    colors: [[0.27, 0.0, 0.33], [0.99, 0.91, 0.14]], label: "vacuum score 0 to 1",
  },
  reprice_away: {
    id: 3, table: "depth_and_flow_1s", column: "reprice_out_away_qty", kind: 2, log: true,
    domain: [0, Math.log1p(50)], colors: [[0.2, 0.1, 0.4], [0.94, 0.5, 1.0]], positiveOnly: true,
    label: "contracts repriced away from spot (log)",
  },
  fill_intensity: {
    id: 4, table: "vacuum_surface_1s", column: "fill_intensity", kind: 2, log: true,
    domain: [0, Math.log1p(1)], colors: [[0.35, 0.3, 0.05], [1.0, 0.97, 0.75]], positiveOnly: true,
    label: "fill intensity: filled / (depth at start + 1)",
  },
};

const VERTEX = `#version 300 es
in vec2 a_position;
void main() {
  gl_Position = vec4(a_position, 0.0, 1.0);
}`;

const FRAGMENT = `#version 300 es
precision highp float;
precision highp sampler2D;
uniform sampler2D u_data;
uniform sampler2D u_columns;
uniform float u_left;        // seconds since the session start of pixel column 0
uniform float u_now;         // seconds before this are shown
uniform int u_rowBottom;     // texture row (ticks above the base price) of pixel row 0
uniform int u_width;
uniform int u_rows;
uniform vec2 u_cut;          // log(1 + lower cut-off), log(1 + upper cut-off), contracts
uniform int u_layerKind;     // 0 none, 1 diverging, 2 sequential
uniform bool u_layerLog;
uniform vec2 u_domain;
uniform vec3 u_colorLow;
uniform vec3 u_colorHigh;
uniform vec3 u_bid;
uniform vec3 u_ask;
out vec4 outColor;
const vec3 BACKGROUND = vec3(0.043, 0.055, 0.078);
const vec3 NOT_LOADED = vec3(0.065, 0.075, 0.095);

void main() {
  float second = u_left + floor(gl_FragCoord.x);
  if (second >= u_now || second < 0.0) { outColor = vec4(BACKGROUND, 1.0); return; }
  int column = int(mod(second, float(u_width)));
  if (texelFetch(u_columns, ivec2(column, 0), 0).r != second) {
    outColor = vec4(NOT_LOADED, 1.0);
    return;
  }
  int row = u_rowBottom + int(floor(gl_FragCoord.y));
  if (row < 0 || row >= u_rows) { outColor = vec4(BACKGROUND, 1.0); return; }
  vec4 texel = texelFetch(u_data, ivec2(column, row), 0);
  float depth = max(texel.r, texel.g);
  vec3 color = BACKGROUND;
  if (depth > 0.0) {
    float t = clamp((log(1.0 + depth) - u_cut.x) / max(u_cut.y - u_cut.x, 1e-6), 0.0, 1.0);
    color = mix(BACKGROUND, texel.r >= texel.g ? u_bid : u_ask, t > 0.0 ? 0.12 + 0.88 * t : 0.0);
  }
  if (u_layerKind > 0) {
    color = mix(BACKGROUND, color, 0.3);
    float value = texel.b;
    if (texel.a > -1e29 && (value < -1e29 || abs(texel.a) > abs(value))) value = texel.a;
    if (value > -1e29) {
      if (u_layerLog) value = log(1.0 + max(value, 0.0));
      if (u_layerKind == 1) {
        float t = clamp(value / u_domain.y, -1.0, 1.0);
        color = mix(color, t < 0.0 ? u_colorLow : u_colorHigh, abs(t));
      } else {
        float t = clamp((value - u_domain.x) / (u_domain.y - u_domain.x), 0.0, 1.0);
        color = mix(color, mix(u_colorLow, u_colorHigh, t), 0.35 + 0.65 * t);
      }
    }
  }
  outColor = vec4(color, 1.0);
}`;

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
    throw new Error(`heatmap shader: ${gl.getShaderInfoLog(shader)}`);
  }
  return shader;
}

export class Heatmap {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl2", { antialias: false, depth: false, alpha: false });
    if (!gl) throw new Error("this browser has no WebGL2: the heatmap needs it");
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      throw new Error(`heatmap program: ${gl.getProgramInfoLog(program)}`);
    }
    this.program = program;
    this.uniforms = {};
    const count = gl.getProgramParameter(program, gl.ACTIVE_UNIFORMS);
    for (let i = 0; i < count; i += 1) {
      const { name } = gl.getActiveUniform(program, i);
      this.uniforms[name] = gl.getUniformLocation(program, name);
    }
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    this.vao = gl.createVertexArray();
    gl.bindVertexArray(this.vao);
    const position = gl.getAttribLocation(program, "a_position");
    gl.enableVertexAttribArray(position);
    gl.vertexAttribPointer(position, 2, gl.FLOAT, false, 0, 0);
    this.width = 0;
    this.stamp = 0;
  }

  /** Ready to draw `span` seconds of `layer`: a new ring when the session, its prices (a
   * live session's range grows) or the span outgrow this one; every column again for a new
   * layer. */
  fit(session, span, layer) {
    if (
      session !== this.session || session.priceBase !== this.priceBase ||
      session.priceRows !== this.rows || this.width < span + 64
    ) {
      this.reset(session, span);
    }
    if (layer !== this.layer) {
      this.layer = layer;
      this.stamp += 1;
    }
  }

  /** A ring of `width` columns over `rows` prices of one session. */
  reset(session, span) {
    const gl = this.gl;
    this.session = session;
    this.priceBase = session.priceBase;
    this.rows = session.priceRows;
    this.width = 2 ** Math.ceil(Math.log2(span + 64));
    for (const texture of [this.data, this.columns]) if (texture) gl.deleteTexture(texture);
    this.data = this.texture(gl.RGBA32F, this.width, this.rows);
    this.columns = this.texture(gl.R32F, this.width, 1);
    gl.bindTexture(gl.TEXTURE_2D, this.columns);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, this.width, 1, gl.RED, gl.FLOAT,
      new Float32Array(this.width).fill(-1));
    this.columnSecond = new Float64Array(this.width).fill(-1);
    this.columnStamp = new Int32Array(this.width);
    this.columnVersion = new Float64Array(this.width); // the store entry's, when uploaded
    this.block = new Float32Array(MAX_BLOCK * this.rows * 4);
    this.stamp += 1;
  }

  texture(format, width, height) {
    const gl = this.gl;
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texStorage2D(gl.TEXTURE_2D, 1, format, width, height);
    for (const parameter of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) {
      gl.texParameteri(gl.TEXTURE_2D, parameter, gl.NEAREST);
    }
    for (const parameter of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) {
      gl.texParameteri(gl.TEXTURE_2D, parameter, gl.CLAMP_TO_EDGE);
    }
    return texture;
  }

  /** Upload the seconds of [from, to) the store can draw and the ring does not hold as they
   * are now (a layer's table may come after the second's depth). */
  sync(store, from, to) {
    let run = [];
    const flush = () => {
      if (run.length) this.upload(store, run);
      run = [];
    };
    for (let second = Math.max(from, this.session.start); second < to; second += 1) {
      const column = this.columnOf(second);
      const stale = store.has(second) && (
        this.columnSecond[column] !== second || this.columnStamp[column] !== this.stamp ||
        this.columnVersion[column] !== store.get(second).version
      );
      if (!stale) {
        flush();
        continue;
      }
      if (run.length && (column === 0 || run.length === MAX_BLOCK)) flush();
      run.push(second);
    }
    flush();
  }

  /** Ring column of a second (seconds since the session start, as the shader counts). */
  columnOf(second) {
    return (second - this.session.start) % this.width;
  }

  upload(store, seconds) {
    const gl = this.gl;
    const n = seconds.length;
    const rows = this.rows;
    const block = this.block;
    for (let i = 0; i < n * rows; i += 1) {
      block[i * 4] = 0;
      block[i * 4 + 1] = 0;
      block[i * 4 + 2] = NO_VALUE;
      block[i * 4 + 3] = NO_VALUE;
    }
    const base = this.priceBase;
    const tick = this.session.tick_size;
    const layer = LAYERS[this.layer];
    seconds.forEach((second, j) => {
      const entry = store.get(second);
      const depth = entry.columns("depth_and_flow_1s");
      const [first, end] = entry.rows("depth_and_flow_1s");
      for (let i = first; i < end; i += 1) {
        const row = Math.round((depth.price[i] - base) / tick);
        if (row >= 0 && row < rows) block[(row * n + j) * 4 + depth.side[i]] = depth.depth_qty_end[i];
      }
      if (!layer.table || !entry.has(layer.table)) return;
      const source = entry.columns(layer.table);
      const [lo, hi] = entry.rows(layer.table);
      const values = source[layer.column];
      for (let i = lo; i < hi; i += 1) {
        const value = values[i];
        if (Number.isNaN(value) || (layer.positiveOnly && !(value > 0))) continue;
        const row = Math.round((source.price[i] - base) / tick);
        if (row >= 0 && row < rows) block[(row * n + j) * 4 + 2 + source.side[i]] = value;
      }
    });
    const column = this.columnOf(seconds[0]);
    gl.bindTexture(gl.TEXTURE_2D, this.data);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, column, 0, n, rows, gl.RGBA, gl.FLOAT, block);
    const relative = Float32Array.from(seconds, (second) => second - this.session.start);
    gl.bindTexture(gl.TEXTURE_2D, this.columns);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, column, 0, n, 1, gl.RED, gl.FLOAT, relative);
    for (const second of seconds) {
      const at = this.columnOf(second);
      this.columnSecond[at] = second;
      this.columnStamp[at] = this.stamp;
      this.columnVersion[at] = store.get(second).version;
    }
  }

  /** One canvas pixel per second and tick of the view, scaled up by CSS (pixelated) and
   * placed so its cells line up with the overlay: the GPU shades a few tens of thousands of
   * pixels a frame, and software compositing reads back no more. */
  draw(view, cut) {
    const gl = this.gl;
    const canvas = this.canvas;
    const session = this.session;
    const tick = session.tick_size;
    const rowBottom = Math.round((view.priceBottom - session.priceBase) / tick);
    const width = view.span;
    const height = Math.ceil(view.height / view.pixelsPerTick) + 2;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const bottomEdge = session.priceBase + (rowBottom - 0.5) * tick;
    const cssHeight = height * view.pixelsPerTick;
    const placement = [view.width, cssHeight, view.yOf(bottomEdge) - cssHeight];
    if (String(placement) !== this.placement) {
      this.placement = String(placement);
      canvas.style.width = `${placement[0]}px`;
      canvas.style.height = `${placement[1]}px`;
      canvas.style.transform = `translateY(${placement[2]}px)`;
    }
    gl.viewport(0, 0, width, height);
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.data);
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, this.columns);
    const u = this.uniforms;
    gl.uniform1i(u.u_data, 0);
    gl.uniform1i(u.u_columns, 1);
    // the ring holds seconds since the session start modulo its width; so does the shader
    const start = session.start;
    gl.uniform1f(u.u_left, view.left - start);
    gl.uniform1f(u.u_now, view.now - start);
    gl.uniform1i(u.u_rowBottom, rowBottom);
    gl.uniform1i(u.u_width, this.width);
    gl.uniform1i(u.u_rows, this.rows);
    gl.uniform2f(u.u_cut, Math.log1p(cut.low), Math.log1p(cut.high));
    const layer = LAYERS[this.layer];
    gl.uniform1i(u.u_layerKind, layer.kind ?? 0);
    gl.uniform1i(u.u_layerLog, layer.log ? 1 : 0);
    gl.uniform2f(u.u_domain, ...(layer.domain ?? [0, 1]));
    gl.uniform3f(u.u_colorLow, ...(layer.colors?.[0] ?? [0, 0, 0]));
    gl.uniform3f(u.u_colorHigh, ...(layer.colors?.[1] ?? [0, 0, 0]));
    gl.uniform3f(u.u_bid, ...BID_RGB);
    gl.uniform3f(u.u_ask, ...ASK_RGB);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
  }
}
