// Follow a file another process appends to (QEMU's console.log): every change notification,
// and a slow poll in case a notification is missed, reads only the bytes past the last read.
import { watch, type FSWatcher } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

const POLL_MS = 250;
const READ_CHUNK = 64 * 1024;

export class FileTail {
  private position = 0;
  private handle: Promise<FileHandle>;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly buffer = Buffer.alloc(READ_CHUNK);

  /** `file` must exist; `onBytes` gets each new piece in file order (a copy it may keep). */
  constructor(
    file: string,
    private readonly onBytes: (bytes: Buffer) => void,
  ) {
    this.handle = open(file, "r");
    this.handle.catch(() => undefined);
    try {
      this.watcher = watch(file, { persistent: false }, () => void this.read());
      this.watcher.on("error", () => undefined);
    } catch {
      // No inotify left on this host: the poll alone still sees everything, a little later.
    }
    this.timer = setInterval(() => void this.read(), POLL_MS);
    this.timer.unref();
    void this.read();
  }

  /** Read whatever is new now; concurrent calls share one read loop and none is lost. */
  read(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        const fh = await this.handle;
        do {
          this.again = false;
          for (;;) {
            const { bytesRead } = await fh.read(this.buffer, 0, this.buffer.length, this.position);
            if (bytesRead === 0) break;
            this.position += bytesRead;
            this.onBytes(Buffer.from(this.buffer.subarray(0, bytesRead)));
          }
        } while (this.again && !this.closed);
      } catch {
        // The file could not be opened or read: nothing to follow.
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }

  /** Read to the end of the file one last time, then stop following it. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.read();
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.timer);
    await this.reading;
    await (await this.handle.catch(() => undefined))?.close().catch(() => undefined);
  }
}
