// What part of the session is on screen: time runs left to right and ends at the replay clock
// (`now`, the end of the last second shown); price runs up, shared by the heatmap, the price
// axis and the gamma panel.
export class View {
  constructor() {
    this.now = 0;
    this.span = 300;
    this.width = 1;
    this.height = 1;
    this.priceCenter = null;
    this.pixelsPerTick = 7;
    this.tick = 0.25;
    this.follow = true;
  }

  get left() {
    return this.now - this.span;
  }

  xOf(second) {
    return ((second - this.left) / this.span) * this.width;
  }

  secondAt(x) {
    return this.left + (x / this.width) * this.span;
  }

  yOf(price) {
    return this.height / 2 - ((price - this.priceCenter) / this.tick) * this.pixelsPerTick;
  }

  priceAt(y) {
    return this.priceCenter + ((this.height / 2 - y) / this.pixelsPerTick) * this.tick;
  }

  get priceTop() {
    return this.priceAt(0);
  }

  get priceBottom() {
    return this.priceAt(this.height);
  }

  /** Keep spot in the middle half while following; re-centre when it leaves. */
  followSpot(spot) {
    if (spot === null || Number.isNaN(spot)) return;
    if (this.priceCenter === null) {
      this.priceCenter = spot;
      return;
    }
    if (!this.follow) return;
    const halfRange = (this.height / 2 / this.pixelsPerTick) * this.tick;
    if (Math.abs(spot - this.priceCenter) > halfRange / 2) this.priceCenter = spot;
  }

  zoomPrice(factor) {
    this.pixelsPerTick = Math.min(40, Math.max(0.5, this.pixelsPerTick * factor));
  }
}
