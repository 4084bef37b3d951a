// A live list view's loop: after the first load, refresh every ms while
// the view is shown and the tab visible; a failed refresh is tried again at
// the next tick. stop() ends it (also a loop whose first load is still
// running: the generation tells them apart).
export class Poller {
  constructor(ms) {
    this.ms = ms;
    this.generation = 0;
    this.timer = null;
  }

  // start runs first() (the view's first load), then refresh() every ms.
  async start(first, refresh) {
    this.stop();
    const gen = ++this.generation;
    await first();
    const tick = async () => {
      if (gen !== this.generation) return;
      try {
        if (!document.hidden) await refresh();
      } catch {
        // the next tick tries again
      }
      if (gen === this.generation) this.timer = setTimeout(tick, this.ms);
    };
    this.timer = setTimeout(tick, this.ms);
  }

  stop() {
    this.generation++;
    clearTimeout(this.timer);
    this.timer = null;
  }
}
