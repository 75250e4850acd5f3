// Runs in the page: records what callbacks receive, and lets a test await an item.

export class Recorder {
  constructor() {
    this.items = [];
    this.waiters = new Set();
  }

  /** A callback that records its argument. */
  get push() {
    return (item) => {
      this.items.push(item);
      for (const waiter of this.waiters) waiter();
    };
  }

  /**
   * Resolves with the first recorded item (past or future) for which `predicate` holds;
   * rejects after `ms` with what was recorded, so that a missing event fails the test.
   */
  wait(predicate, what = 'an item', ms = 10000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.items.find(predicate);
        if (found === undefined) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; recorded: ${JSON.stringify(this.items)}`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once `n` items are recorded. */
  count(n, what = `${n} items`, ms = 10000) {
    return this.wait(() => this.items.length >= n, what, ms).then(() => this.items.slice(0, n));
  }
}
