// Renders a node's kickstart from an eta template, after checking every value that goes into it:
// a value that could end a kickstart line or a shell quote is refused with the field's name.
import { readFile } from 'node:fs/promises';
import { Eta } from 'eta';

export interface KickstartSettings {
  /** crypt(3) hash ($6$…, $y$…); never logged, never in an error message. '' = root login locked. */
  rootPasswordHash: string;
  /** disk for the OS: sda, nvme0n1, disk/by-id/… */
  osDisk: string;
  timezone?: string;
  lang?: string;
  keyboard?: string;
  /** default: @^minimal-environment, curl */
  basePackages?: string[];
  extraPackages?: string[];
  /** a custom eta template, rendered with the same variables as the built-in one */
  templatePath?: string;
}

/** What the server knows about the request. */
export interface KickstartRequestContext {
  node: string;
  hostname: string;
  mac?: string;
  repoUrl: string;
  statusUrl: string;
  imageVersion: string;
  attempt: number;
}

/** The variables a template sees as `it`. */
export interface KickstartVars {
  node: string;
  hostname: string;
  /** MAC of the boot interface, or 'link' (first interface with a link) while unknown */
  device: string;
  repoUrl: string;
  statusUrl: string;
  imageVersion: string;
  attempt: number;
  rootPasswordHash: string;
  osDisk: string;
  timezone: string;
  lang: string;
  keyboard: string;
  packages: string[];
}

export class KickstartValueError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`kickstart ${field}: ${reason}`);
    this.name = 'KickstartValueError';
  }
}

export const DEFAULT_TEMPLATE_PATH = new URL('../templates/kickstart.ks.eta', import.meta.url).pathname;
const DEFAULT_PACKAGES = ['@^minimal-environment', 'curl'];

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const NODE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const DISK_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,254}$/;
const PACKAGE_RE = /^-?@?\^?[A-Za-z0-9_][A-Za-z0-9_.+:*~-]{0,199}$/;
const TIMEZONE_RE = /^[A-Za-z][A-Za-z0-9_+/-]{0,63}$/;
const LANG_RE = /^[A-Za-z]{2,3}(_[A-Z]{2})?(\.[A-Za-z0-9-]+)?(@[a-z]+)?$/;
const KEYBOARD_RE = /^[A-Za-z0-9_-]{1,32}$/;
const CRYPT_RE = /^\$(1|5|6|y|2[aby])\$[./A-Za-z0-9$=,]{8,512}$/;
const URL_RE = /^https?:\/\/[A-Za-z0-9.:[\]_~%/+@!$&()*,;=-]+$/; // no quotes, spaces or backslashes

function check(field: string, value: string | undefined, re: RegExp, what: string, secret = false): string {
  if (typeof value !== 'string' || !re.test(value) || value.split('/').includes('..')) {
    const shown = secret ? 'the value' : JSON.stringify(value);
    throw new KickstartValueError(field, `${shown} is not ${what}`);
  }
  return value;
}

/** Validates settings and request context into template variables; throws KickstartValueError. */
export function kickstartVars(settings: KickstartSettings, ctx: KickstartRequestContext): KickstartVars {
  const packages = [...(settings.basePackages ?? DEFAULT_PACKAGES), ...(settings.extraPackages ?? [])];
  packages.forEach((name, i) => {
    check(`packages[${i}]`, name, PACKAGE_RE, 'a package, @group or -exclusion name');
  });
  return {
    node: check('node', ctx.node, NODE_RE, 'a node name'),
    hostname: check('hostname', ctx.hostname, HOSTNAME_RE, 'an RFC 1123 host name'),
    device:
      ctx.mac === undefined ? 'link' : check('mac', ctx.mac, MAC_RE, 'a lower-case aa:bb:cc:dd:ee:ff MAC'),
    repoUrl: check('repoUrl', ctx.repoUrl, URL_RE, 'an http(s) URL without quotes or spaces'),
    statusUrl: check('statusUrl', ctx.statusUrl, URL_RE, 'an http(s) URL without quotes or spaces', true),
    imageVersion: check('imageVersion', ctx.imageVersion, /^[A-Za-z0-9._+-]{1,64}$/, 'an image version'),
    attempt: Number.isSafeInteger(ctx.attempt) ? ctx.attempt : 0,
    rootPasswordHash:
      settings.rootPasswordHash === ''
        ? '' // locked root account
        : check('rootPasswordHash', settings.rootPasswordHash, CRYPT_RE, 'a crypt(3) hash', true),
    osDisk: check('osDisk', settings.osDisk, DISK_RE, 'a disk name such as sda or disk/by-id/…'),
    timezone: check('timezone', settings.timezone ?? 'Etc/UTC', TIMEZONE_RE, 'a tz database name'),
    lang: check('lang', settings.lang ?? 'en_US.UTF-8', LANG_RE, 'a locale such as en_US.UTF-8'),
    keyboard: check('keyboard', settings.keyboard ?? 'us', KEYBOARD_RE, 'a keymap name'),
    packages,
  };
}

// Kickstart is not HTML: no auto-escaping; values are made safe by kickstartVars' checks instead.
const eta = new Eta({ autoEscape: false, autoTrim: false, cache: false });
let defaultTemplate: string | undefined;

export async function renderKickstart(
  settings: KickstartSettings,
  ctx: KickstartRequestContext,
): Promise<string> {
  const vars = kickstartVars(settings, ctx);
  let template: string;
  if (settings.templatePath) {
    template = await readFile(settings.templatePath, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new KickstartValueError(
        'templatePath',
        `cannot read ${settings.templatePath}: ${err.code ?? err.message}`,
      );
    });
  } else {
    defaultTemplate ??= await readFile(DEFAULT_TEMPLATE_PATH, 'utf8');
    template = defaultTemplate;
  }
  return eta.renderString(template, vars);
}
