/* floats: printf of floating-point values and the math library, in
 * double and float, including special values. */
#include <float.h>
#include <math.h>
#include <stdio.h>

static volatile double zero = 0.0;

int main(void) {
	double vals[] = {0.0, 1.0, -2.5, 3.14159265358979, 1e-5, 123456789.125, 6.02214076e23, 1.0 / 3.0};
	for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++)
		printf("%f | %.2f | %e | %g | %10.3g|\n", vals[i], vals[i], vals[i], vals[i], vals[i]);
	printf("sqrt(2)=%.12f\n", sqrt(2.0));
	printf("sin(1)=%.12f cos(1)=%.12f tan(0.5)=%.12f\n", sin(1.0), cos(1.0), tan(0.5));
	printf("exp(1)=%.12f log(10)=%.12f log10(1000)=%.12f\n", exp(1.0), log(10.0), log10(1000.0));
	printf("pow(2,10)=%.1f pow(2,0.5)=%.12f\n", pow(2.0, 10.0), pow(2.0, 0.5));
	printf("atan2(1,1)=%.12f fmod(7.5,2)=%.3f\n", atan2(1.0, 1.0), fmod(7.5, 2.0));
	printf("floor %.1f ceil %.1f fabs %.1f\n", floor(-2.5), ceil(-2.5), fabs(-7.25));
	printf("ldexp %.3f frexp ", ldexp(0.75, 4));
	int e;
	double m = frexp(48.0, &e);
	printf("%.3f*2^%d\n", m, e);
	double ip;
	double fp = modf(-3.75, &ip);
	printf("modf %.2f %.2f\n", ip, fp);

	float f = 1.1f;
	double sum = 0;
	for (int i = 0; i < 1000; i++)
		sum += f;
	printf("float sum %.6f\n", sum);
	float acc = 0;
	for (int i = 1; i <= 100; i++)
		acc += 1.0f / (float)i;
	printf("harmonic(100) as float %.6f\n", acc);

	double inf = 1.0 / zero;
	double nan = zero / zero;
	printf("isinf %d isnan %d inf>max %d nan!=nan %d\n", isinf(inf) != 0, isnan(nan) != 0, inf > DBL_MAX, nan != nan);
	printf("DBL_EPSILON %e FLT_MAX %e\n", DBL_EPSILON, (double)FLT_MAX);
	printf("casts: %d %d %lld %u\n", (int)3.99, (int)-3.99, (long long)1e15, (unsigned)(4e9));
	printf("rounding: %.0f %.0f %.0f %.0f\n", 0.5, 1.5, 2.5, -0.5);
	printf("small: %.3e %.10f\n", 1.234e-300, 1e-10);
	return 0;
}
