// The real frames in ../shared/real-frames carry no orientation: tips point left in the two
// 864 x 1536 line exports (2022...) and the BMP, right in the others (by eye).
import type { Orientation } from '../src/types.ts';

export function realOrientation(name: string): Orientation {
  return name.startsWith('2022') || name.endsWith('.BMP') ? 'tips-left' : 'tips-right';
}
