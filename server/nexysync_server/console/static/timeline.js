// A virtualised list: whatever the number of items, only the rows in view (plus a few) exist in
// the DOM, so ten thousand messages scroll like ten. Rows have one fixed height.

export class VirtualList {
  /**
   * @param {HTMLElement} viewport  the scrolling element
   * @param {number} rowHeight      pixels per row (must match the CSS)
   * @param {(index: number) => HTMLElement} renderRow
   */
  constructor(viewport, rowHeight, renderRow) {
    this.viewport = viewport;
    this.rowHeight = rowHeight;
    this.renderRow = renderRow;
    this.count = 0;
    this.spacer = document.createElement("div");
    this.spacer.className = "vlist-spacer";
    this.layer = document.createElement("div");
    this.layer.className = "vlist-rows";
    viewport.replaceChildren(this.spacer, this.layer);
    this.scheduled = false;
    this.window = [0, 0];
    viewport.addEventListener("scroll", () => this.refresh());
    new ResizeObserver(() => this.refresh()).observe(viewport);
  }

  atBottom() {
    const v = this.viewport;
    return v.scrollHeight - v.scrollTop - v.clientHeight < this.rowHeight;
  }

  /** Set the number of items; keep the view pinned to the end if it was there. */
  setCount(count) {
    const pinned = this.count === 0 || this.atBottom();
    this.count = count;
    // Set through the CSSOM, which a strict style-src allows (no inline style attributes).
    this.spacer.style.height = `${count * this.rowHeight}px`;
    if (pinned) this.viewport.scrollTop = this.viewport.scrollHeight;
    this.refresh();
  }

  /** The indices in view now: [first, end). */
  visible() {
    return this.window;
  }

  scrollTo(index) {
    this.viewport.scrollTop = Math.max(0, index * this.rowHeight - this.viewport.clientHeight / 2);
    this.refresh();
  }

  /** Re-render the rows in view at the next frame (coalesced). */
  refresh() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  render() {
    const overscan = 5;
    const top = this.viewport.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - overscan);
    const end = Math.min(this.count, Math.ceil((top + this.viewport.clientHeight) / this.rowHeight) + overscan);
    this.window = [first, end];
    const rows = [];
    for (let index = first; index < end; index += 1) {
      const row = this.renderRow(index);
      row.style.transform = `translateY(${index * this.rowHeight}px)`;
      rows.push(row);
    }
    this.layer.replaceChildren(...rows);
    this.onRender?.(first, end);
  }
}
