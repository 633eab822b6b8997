/**
 * Screenshots of every dashboard page for docs/serve.md, from a running `autoprune serve`:
 *
 *   node --import tsx test/serve-screenshots.ts http://127.0.0.1:8080/ docs/img [study] [other-study]
 *
 * Uses Debian's chromium through playwright-core, as the browser tests do. The first study (default:
 * the first listed) is the one shown; compare overlays it with the second when given.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser } from './serve-chromium.js';

const [url = 'http://127.0.0.1:8080/', out = 'docs/img', studyArg, otherArg] = process.argv.slice(2);
mkdirSync(out, { recursive: true });

const list = (await (await fetch(`${url}api/studies`)).json()) as { studies: { name: string; proxyFront: number[]; finalFront: number[] }[] };
const study = list.studies.find((s) => s.name === studyArg) ?? list.studies[0];
if (!study) throw new Error(`no studies at ${url}`);
const other = otherArg ?? list.studies.find((s) => s.name !== study.name)?.name;
const trial = study.finalFront[0] ?? study.proxyFront[Math.floor(study.proxyFront.length / 2)] ?? 0;
const s = encodeURIComponent(study.name);

const shots: [string, string, string][] = [
  ['serve-studies.png', '#/', '#studies tbody tr'],
  ['serve-study.png', `#/study/${s}`, '#front-chart[data-painted]'],
  ['serve-trial.png', `#/study/${s}/trial/${trial}`, '#keep-bars'],
  ['serve-trials.png', `#/study/${s}/trials`, '#trials tbody tr'],
  ['serve-progress.png', `#/study/${s}/progress`, '#progress-chart[data-painted]'],
  ['serve-pick.png', `#/study/${s}/pick`, '#picked tbody tr'],
  ['serve-compare.png', `#/compare?s=${s}${other ? `&s=${encodeURIComponent(other)}` : ''}`, '#compare-chart[data-painted]'],
];

const browser = await launchBrowser();
try {
  for (const [file, hash, ready] of shots) {
    const page = await browser.context.newPage();
    await page.goto(`${url}${hash}`);
    await page.waitForSelector(ready);
    if (file === 'serve-pick.png') {
      await page.fill('input[name="maxFlops"]', '60%');
      await page.fill('input[name="top"]', '5');
      await page.click('form.pick button[type="submit"]');
      await page.waitForFunction(
        () => document.querySelectorAll('#picked tbody tr').length > 0 && document.querySelector('#pick-result code.cmd')?.textContent?.includes('60%'),
      );
    }
    if (file === 'serve-study.png') {
      // Show a trial's card, as hovering does.
      const pos = await page.evaluate(() => {
        // biome-ignore lint/suspicious/noExplicitAny: chart.js is a global of the page
        const chart = (window as any).Chart.getChart(document.getElementById('front-chart'));
        const ds = chart.data.datasets.findIndex((d: { label: string }) => d.label === 'proxy Pareto front');
        const meta = chart.getDatasetMeta(ds).data;
        const el = meta[Math.floor(meta.length / 2)];
        const r = chart.canvas.getBoundingClientRect();
        return { x: r.left + el.x, y: r.top + el.y };
      });
      await page.mouse.move(pos.x, pos.y);
      await page.waitForSelector('#card:not([hidden])');
    }
    await page.waitForTimeout(300);
    // Long pages are cut at the window (900 px): small files, the top of each page.
    await page.screenshot({ path: join(out, file), fullPage: false });
    await page.close();
    console.log(`wrote ${join(out, file)}`);
  }
} finally {
  await browser.close();
}
