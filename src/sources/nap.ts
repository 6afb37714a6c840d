// A source's wait between polls or frames that an event can cut short (a new file, a stop
// request); while it naps the source is idle, which keeps the watchdog fed.
export class Nap {
  napping = false;
  private wakeUp: (() => void) | null = null;

  sleep(ms: number): Promise<void> {
    this.napping = true;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = null;
        this.napping = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}
